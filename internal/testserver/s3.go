package testserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const installWeed = "scripts/install-deps.sh (builds SeaweedFS's weed from the Go module proxy into $(go env GOPATH)/bin)"

// S3 is a running S3-compatible server: SeaweedFS's `weed mini` (master,
// volume server, filer and S3 gateway in one process), with one bucket and
// one access key.
type S3 struct {
	Endpoint  string // http://127.0.0.1:port
	Port      int
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	Dir       string // data directory

	proc *process
}

// weedDirs are where the weed binary is looked for after PATH: where
// scripts/install-deps.sh puts it.
func weedDirs() []string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(string(trimNL(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// StartS3 starts `weed mini` bound to 127.0.0.1 on free ports in a
// temporary directory, with the bucket "strata" and an admin identity, and
// waits until the bucket answers. It stops when tb ends. Clients
// authenticate with AccessKey and SecretKey (SetEnv puts them where the
// AWS SDK finds them).
func StartS3(tb testing.TB) *S3 {
	tb.Helper()
	bin := need(tb, "weed", installWeed, weedDirs()...)
	s := &S3{
		Bucket:    "strata",
		Region:    "us-east-1",
		AccessKey: "strata-test",
		SecretKey: "strata-test-secret",
		Dir:       tb.TempDir(),
	}
	config := fmt.Sprintf(`{"identities":[{"name":"strata","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`,
		s.AccessKey, s.SecretKey)
	confPath := filepath.Join(s.Dir, "s3.json")
	if err := os.WriteFile(confPath, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		tb.Fatal(err)
	}
	s.Port = freePort(tb, 0)
	s.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	port := func(flag string) string { return "-" + flag + "=" + strconv.Itoa(freePort(tb, 0)) }
	cmd := exec.Command(bin, "mini",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-s3.port="+strconv.Itoa(s.Port), port("s3.port.grpc"), "-s3.config="+confPath,
		port("master.port"), port("master.port.grpc"),
		port("filer.port"), port("filer.port.grpc"),
		port("volume.port"), port("volume.port.grpc"),
		port("admin.port"), port("admin.port.grpc"), "-admin.port.legacy=0", "-admin.ui=false",
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
		"-master.telemetry=false", "-master.volumeSizeLimitMB=64",
		"-bucket="+s.Bucket)
	cmd.Dir = s.Dir
	s.proc = start(tb, "weed mini "+s.Endpoint, cmd)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("weed mini %s log:\n%s", s.Endpoint, tail(s.proc.log.String()))
		}
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
	})
	client := s.Client(tb)
	waitUntil(tb, s.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)})
		return err
	})
	return s
}

// Client returns an S3 client of the server, authenticated with its key,
// whose connections close when tb ends.
func (s *S3) Client(tb testing.TB) *s3.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
}

// URL returns the checkpoint location URL of prefix in the bucket:
// s3://strata/prefix?endpoint=...&region=...&use_path_style=true. The
// credentials are not in it: see SetEnv.
func (s *S3) URL(prefix string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {s.Region}, "use_path_style": {"true"}}
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// SetEnv sets, for the rest of the test, the environment through which the
// AWS SDK finds the server's credentials (and turns off its look-ups of an
// EC2 metadata service). Child processes inherit it.
func (s *S3) SetEnv(tb testing.TB) {
	tb.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	tb.Setenv("AWS_REGION", s.Region)
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tb.Setenv("AWS_CONFIG_FILE", filepath.Join(s.Dir, "no-aws-config"))
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.Dir, "no-aws-credentials"))
}
