package audit

import (
	"context"
	"path/filepath"
	"testing"
)

// benchFileSink measures FileSink.Deliver per event: batches of 256
// events with every field set, rotated every 16 MiB.
func benchFileSink(b *testing.B, o FileOptions) {
	o.Path = filepath.Join(b.TempDir(), "audit.jsonl")
	o.MaxBytes, o.MaxFiles = 16<<20, 1
	s, err := NewFileSink(o)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Event, 256)
	for i := range batch {
		batch[i] = sampleEvent()
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := s.Deliver(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkFileSinkDeliver(b *testing.B) { benchFileSink(b, FileOptions{}) }

// BenchmarkFileSinkDeliverKeyed is the same with a chain key and a
// checkpoint (signed, after a sync) every 1000 lines.
func BenchmarkFileSinkDeliverKeyed(b *testing.B) {
	_, priv := testSigner(b)
	benchFileSink(b, FileOptions{ChainKey: testKey(7), CheckpointKey: priv})
}

// BenchmarkLineUnkeyed and BenchmarkLineKeyed measure building one chained
// line, without the write: the plain SHA-256 link, and the keyed one (the
// line's HMAC-SHA256 appended).
func BenchmarkLineUnkeyed(b *testing.B) {
	s, err := NewFileSink(FileOptions{Path: filepath.Join(b.TempDir(), "a.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	e := sampleEvent()
	h := head{last: GenesisHash}
	b.ReportAllocs()
	for b.Loop() {
		if _, h, err = s.marshal(&e, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLineKeyed(b *testing.B) {
	s, err := NewFileSink(FileOptions{Path: filepath.Join(b.TempDir(), "a.jsonl"), ChainKey: testKey(7)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	e := sampleEvent()
	var h head
	b.ReportAllocs()
	for b.Loop() {
		if _, h, err = s.marshal(&e, h); err != nil {
			b.Fatal(err)
		}
	}
}
