package checkpoint

import (
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of a Coordinator's spans.
const TracerName = "github.com/strata-kv/strata/checkpoint"

// The spans of a Coordinator (see Options.TracerProvider).
const (
	// SpanCreate covers one checkpoint (Checkpoint, CheckpointAt and the
	// periodic ones), from the first read of the store to the publish.
	SpanCreate = "strata.checkpoint.create"
	// SpanRestore covers one Restore or RestoreLatest, verification
	// included.
	SpanRestore = "strata.checkpoint.restore"
)

// The attributes of a Coordinator's spans, besides db.system (the
// store kind, Options.Source).
const (
	AttrID      = "strata.checkpoint.id"      // the checkpoint written or restored
	AttrEntries = "strata.checkpoint.entries" // entries written to the checkpoint, or restored into the store
	AttrBytes   = "strata.checkpoint.bytes"   // the checkpoint's file size
	AttrDelta   = "strata.checkpoint.delta"   // the checkpoint is a delta
	AttrAligned = "strata.checkpoint.aligned" // CheckpointAt: the caller holds its writes
	AttrLatest  = "strata.checkpoint.latest"  // RestoreLatest rather than Restore
	AttrChain   = "strata.checkpoint.chain"   // checkpoints applied: a full one and its deltas
	AttrSkipped = "strata.checkpoint.skipped" // invalid checkpoints RestoreLatest passed over
)

// endSpan records err, if any, and ends span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
