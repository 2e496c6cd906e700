package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata/config"
)

// configPath returns the --config file, "" when none was given.
func configPath(cmd *cobra.Command) string {
	if f := cmd.Flag(configFlag); f != nil {
		return f.Value.String()
	}
	return ""
}

// exclusive fails when --config was given together with one of the
// command's flags that the file replaces.
func exclusive(cmd *cobra.Command, replaced ...string) error {
	if configPath(cmd) == "" {
		return nil
	}
	var given []string
	for _, name := range replaced {
		if cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) > 0 {
		return usageErr("%s and --%s together: give one or the other", strings.Join(given, ", "), configFlag)
	}
	return nil
}

// loadConfig reads the --config file, or returns nil without one.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path := configPath(cmd)
	if path == "" {
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", configFlag, path, err)
	}
	return cfg, nil
}
