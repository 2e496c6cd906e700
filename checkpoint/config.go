package checkpoint

import (
	"cmp"
	"fmt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

// OptionsFromConfig returns the options of a Coordinator that a
// configuration file's [checkpoint] table describes: location or directory,
// interval, minimum interval, retention, deltas and compression. The fields the file does
// not set keep their defaults; the caller may add the others (Logger,
// Mode, Limits, ...). A missing directory is reported by New.
func OptionsFromConfig(c config.Checkpoint) Options {
	o := Options{
		Dir:            c.Dir,
		Location:       c.Location,
		Interval:       c.Interval,
		MinInterval:    c.MinInterval,
		MaxCheckpoints: c.MaxCheckpoints,
		MaxDeltas:      c.MaxDeltas,
	}
	if c.Compress != nil {
		o.Compression = CompressionZstd
		if !*c.Compress {
			o.Compression = CompressionNone
		}
	}
	return o
}

// FromConfig returns the Coordinator of s that c's [checkpoint] table asks
// for, not yet started, or nil when c.Checkpoint.Enabled is false (no
// [checkpoint] table, or enabled = false): the process then takes no
// checkpoints. Its options are OptionsFromConfig(c.Checkpoint), completed
// by opts when not nil: opts gives the fields a file cannot (Logger,
// Clock, Mode, Limits, Aligned, ...) and defaults for the others, which the
// file's settings override. The caller restores (RestoreLatest) if it
// wants to, starts the periodic checkpoints (Start) and takes the final
// one (Shutdown):
//
//	coord, err := checkpoint.FromConfig(cfg, store, nil)
//	if err != nil { ... }
//	if coord != nil {
//		if _, err := coord.RestoreLatest(ctx); err != nil && !errors.Is(err, checkpoint.ErrNoCheckpoint) { ... }
//		coord.Start(ctx)
//		defer coord.Shutdown(context.WithoutCancel(ctx))
//	}
func FromConfig(c *config.Config, s strata.Store, opts *Options) (*Coordinator, error) {
	if !c.Checkpoint.Enabled {
		return nil, nil
	}
	o := OptionsFromConfig(c.Checkpoint)
	if opts != nil {
		file := o
		o = *opts
		o.Dir = cmp.Or(file.Dir, o.Dir)
		o.Location = cmp.Or(file.Location, o.Location)
		if file.Location != "" || file.Dir != "" {
			o.Dir, o.Location = file.Dir, file.Location
		}
		o.MaxDeltas = cmp.Or(file.MaxDeltas, o.MaxDeltas)
		o.Interval = cmp.Or(file.Interval, o.Interval)
		o.MinInterval = cmp.Or(file.MinInterval, o.MinInterval)
		o.MaxCheckpoints = cmp.Or(file.MaxCheckpoints, o.MaxCheckpoints)
		o.Compression = cmp.Or(file.Compression, o.Compression)
	}
	if o.Dir == "" && o.Location == "" {
		return nil, fmt.Errorf("%w: checkpoint: checkpoint_dir, location (or CHECKPOINT_DIR) is required when checkpoints are enabled", strata.ErrInvalidConfig)
	}
	return New(s, &o)
}
