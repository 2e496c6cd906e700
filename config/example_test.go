package config_test

import (
	"fmt"
	"log"
	"time"

	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/stores/redis"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
[state]
backend = "redis"

[state.redis]
urls = ["redis://:secret@redis-1:6379", "redis://:secret@redis-2:6379"]
cluster_mode = true
connect_timeout_secs = 5
read_timeout = "500ms"

[checkpoint]
interval_secs = 10
checkpoint_dir = "/var/lib/app/checkpoints"
`), nil)
	if err != nil {
		log.Fatal(err)
	}
	o, err := redis.OptionsFromConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(o) // the passwords are redacted
	fmt.Println(cfg.Checkpoint.Enabled, checkpoint.OptionsFromConfig(cfg.Checkpoint).Interval)

	_, err = config.Parse([]byte(`
[state]
backend = "redis"

[state.redis]
url = "redis://cache:6379"
connect_timeout = "5s"
connect_timeout_secs = 5
`), nil)
	fmt.Println(err)
	// Output:
	// redis.Options{URLs: [redis://:xxxxx@redis-1:6379 redis://:xxxxx@redis-2:6379], ClusterMode: true, DialTimeout: 5s, ReadTimeout: 500ms}
	// true 10s
	// strata: invalid configuration: config: state.redis.connect_timeout and state.redis.connect_timeout_secs: two spellings of one setting; give one
}

func ExampleSection_Decode() {
	// A store package's table, under [state]: its struct's toml tags name
	// the keys, alias tags their other spellings.
	type table struct {
		Endpoint string        `toml:"endpoint"`
		Timeout  time.Duration `toml:"timeout" alias:"timeout_secs"`
	}
	cfg, err := config.Parse([]byte("[state.mystore]\nendpoint = \"10.0.0.1:9000\"\ntimeout_secs = 3\n"), nil)
	if err != nil {
		log.Fatal(err)
	}
	var t table
	if err := cfg.Section("mystore").Decode(&t); err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Endpoint, t.Timeout)

	err = cfg.Section("mystore").Decode(&struct {
		Endpoint string `toml:"endpoint"`
	}{})
	fmt.Println(err)
	// Output:
	// 10.0.0.1:9000 3s
	// strata: invalid configuration: config: state.mystore.timeout_secs: unknown key (accepted: endpoint)
}
