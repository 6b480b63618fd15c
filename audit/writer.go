package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// WriterOptions configures a WriterSink.
type WriterOptions struct {
	// Name names the sink in stats (default "stdout").
	Name string
	// Writer receives the lines (e.g. os.Stdout). The sink does not close
	// it.
	Writer io.Writer
	// BatchSize is the most events taken from the queue at once (default
	// 256); each line is still its own Write.
	BatchSize int
}

// WriterSink writes JSON lines (MarshalLine, without a chain; checkpoints
// as checkpoint lines) to an io.Writer, one Write call per line, so lines never interleave with other
// writers of the same stream.
type WriterSink struct {
	name  string
	w     io.Writer
	batch int
}

var (
	_ Destination       = (*WriterSink)(nil)
	_ CheckpointCarrier = (*WriterSink)(nil)
)

// NewWriterSink returns a sink writing to o.Writer.
func NewWriterSink(o WriterOptions) (*WriterSink, error) {
	if o.Writer == nil {
		return nil, errors.New("audit: writer sink: no writer")
	}
	if o.Name == "" {
		o.Name = "stdout"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	return &WriterSink{name: o.Name, w: o.Writer, batch: o.BatchSize}, nil
}

// Name returns the sink's name.
func (s *WriterSink) Name() string { return s.name }

// Delivery takes what is queued at once, retrying a failed write from
// 100ms up to 5s apart.
func (s *WriterSink) Delivery() Delivery {
	return Delivery{BatchSize: s.batch, MinBackoff: DefaultMinBackoff, MaxBackoff: 5 * time.Second}
}

// Deliver writes each event as one line.
func (s *WriterSink) Deliver(_ context.Context, batch []Event) (int, error) {
	for i, e := range batch {
		line := e.MarshalLine(nil)
		if line == nil {
			return i, errZerologDisabled
		}
		if _, err := s.w.Write(line); err != nil {
			return i, fmt.Errorf("write audit line: %w", err)
		}
	}
	return len(batch), nil
}

// CarriesCheckpoints reports true: the writer also gets the checkpoints of
// the Auditor's keyed file sinks, as checkpoint lines.
func (s *WriterSink) CarriesCheckpoints() bool { return true }

// Close does nothing: the writer belongs to the caller.
func (s *WriterSink) Close(context.Context) error { return nil }

// errZerologDisabled: MarshalLine wrote nothing.
var errZerologDisabled = errors.New("audit: zerolog is disabled globally; no line was written")
