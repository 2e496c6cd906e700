package config

import (
	"cmp"
	"fmt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

// Options returns the options of a checkpoint.Coordinator that the
// [checkpoint] table describes: directory, interval, minimum interval,
// retention and compression. The fields the file does not set keep
// checkpoint's defaults; the caller may add the others (Logger, Mode,
// Limits, ...). A missing directory is reported by checkpoint.New.
func (c Checkpoint) Options() checkpoint.Options {
	o := checkpoint.Options{
		Dir:            c.Dir,
		Interval:       c.Interval,
		MinInterval:    c.MinInterval,
		MaxCheckpoints: c.MaxCheckpoints,
	}
	if c.Compress != nil {
		o.Compression = checkpoint.CompressionZstd
		if !*c.Compress {
			o.Compression = checkpoint.CompressionNone
		}
	}
	return o
}

// NewCoordinator returns the checkpoint.Coordinator of s that c's
// [checkpoint] table asks for, not yet started, or nil when
// c.Checkpoint.Enabled is false (no [checkpoint] table, or enabled = false):
// then the process takes no checkpoints. Its options are
// c.Checkpoint.Options(), completed by opts when not nil: opts gives the
// fields a file cannot (Logger, Clock, Mode, Limits, ...) and defaults for
// the others, which the file's settings override. The caller restores
// (RestoreLatest) if it wants to, starts the periodic checkpoints (Start)
// and takes the final one (Shutdown):
//
//	coord, err := config.NewCoordinator(cfg, store, nil)
//	if err != nil { ... }
//	if coord != nil {
//		if _, err := coord.RestoreLatest(ctx); err != nil && !errors.Is(err, checkpoint.ErrNoCheckpoint) { ... }
//		coord.Start(ctx)
//		defer coord.Shutdown(context.WithoutCancel(ctx))
//	}
func NewCoordinator(c *Config, s strata.Store, opts *checkpoint.Options) (*checkpoint.Coordinator, error) {
	if !c.Checkpoint.Enabled {
		return nil, nil
	}
	o := c.Checkpoint.Options()
	if opts != nil {
		file := o
		o = *opts
		o.Dir = cmp.Or(file.Dir, o.Dir)
		o.Interval = cmp.Or(file.Interval, o.Interval)
		o.MinInterval = cmp.Or(file.MinInterval, o.MinInterval)
		o.MaxCheckpoints = cmp.Or(file.MaxCheckpoints, o.MaxCheckpoints)
		o.Compression = cmp.Or(file.Compression, o.Compression)
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: config: checkpoint.checkpoint_dir (or CHECKPOINT_DIR) is required when checkpoints are enabled", strata.ErrInvalidConfig)
	}
	return checkpoint.New(s, &o)
}
