package redis

import (
	"errors"
	"strconv"
	"strings"
)

// isSentinelScheme reports whether scheme is redis+sentinel or
// rediss+sentinel.
func isSentinelScheme(scheme string) bool {
	s := strings.ToLower(scheme)
	return s == SchemeSentinel || s == SchemeSentinelTLS
}

// sentinelPath takes apart the path of a redis+sentinel URL:
// /master-name or /master-name/db.
func sentinelPath(path string) (name string, db int, err error) {
	rest := strings.TrimPrefix(path, "/")
	name, dbs, _ := strings.Cut(rest, "/")
	if name == "" {
		return "", 0, errors.New("no master name: want redis+sentinel://sentinel1:26379,sentinel2:26379/master-name[/db]")
	}
	if dbs = strings.TrimSuffix(dbs, "/"); dbs != "" {
		db, err = strconv.Atoi(dbs)
		if err != nil || db < 0 || strings.Contains(dbs, "/") {
			return "", 0, errors.New("path: want /master-name or /master-name/db with db a database number such as 0")
		}
	}
	return name, db, nil
}

// checkSentinel reports the bad combinations of the Sentinel fields.
func (o *Options) checkSentinel(bad func(field, format string, args ...any)) {
	if o.MasterName == "" {
		if o.SentinelUsername != "" || o.SentinelPassword != "" {
			bad("sentinel_password", "sentinel credentials given without sentinel_master (or a redis+sentinel URL)")
		}
		return
	}
	if o.ClusterMode {
		bad("sentinel_master", "given with cluster_mode: Redis Cluster fails over on its own; use one or the other")
	}
	if strings.ContainsAny(o.MasterName, " \t\r\n") {
		bad("sentinel_master", "%q: a master name has no white space", o.MasterName)
	}
}
