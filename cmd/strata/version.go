package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what strata version prints.
type versionInfo struct {
	Module   string `json:"module"`
	Version  string `json:"version"`            // the module version, "(devel)" for a build from a checkout without one
	Revision string `json:"revision,omitempty"` // the VCS revision built, when the build recorded it
	Time     string `json:"time,omitempty"`     // the revision's commit time
	Modified bool   `json:"modified"`           // the working tree had changes the revision lacks
	Go       string `json:"go"`
}

// readVersion returns the version of the module bi describes, or, without
// build information, only the Go version.
func readVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Module: "github.com/strata-kv/strata", Version: "unknown", Go: runtime.Version()}
	if !ok || bi == nil {
		return v
	}
	v.Module = cmp.Or(bi.Main.Path, v.Module)
	v.Version = cmp.Or(bi.Main.Version, v.Version)
	v.Go = cmp.Or(bi.GoVersion, v.Go)
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line strata version prints.
func (v versionInfo) String() string {
	s := fmt.Sprintf("strata %s (%s", v.Version, v.Module)
	if v.Revision != "" {
		s += ", revision " + v.Revision
		if v.Modified {
			s += " with local changes"
		}
		if v.Time != "" {
			s += " of " + v.Time
		}
	}
	return s + ", " + v.Go + ")"
}

func newVersion() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print strata's module version and VCS revision",
		Long: `version prints the module version strata was built from, the VCS revision
and commit time when the build recorded them (go build in a checkout does;
go run and go test do not), and the Go version; --json prints them as a
JSON object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readVersion(debug.ReadBuildInfo())
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), v)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: module, version, revision, time, modified, go")
	return cmd
}
