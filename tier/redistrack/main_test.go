package redistrack_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(envWriter) != "" {
		os.Exit(writerMain())
	}
	goleak.VerifyTestMain(m)
}
