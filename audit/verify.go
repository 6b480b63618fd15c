package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Problem kinds reported by Verify.
const (
	// ProblemUnparseable: a line is not a hash-chained audit line.
	ProblemUnparseable = "unparseable"
	// ProblemAltered: a line's bytes changed since it was written.
	ProblemAltered = "altered"
	// ProblemRemoved: lines are missing.
	ProblemRemoved = "removed"
	// ProblemReordered: a line is not where it was written.
	ProblemReordered = "reordered"
	// ProblemInserted: lines that were never written by the chain.
	ProblemInserted = "inserted"
	// ProblemHeadMissing: the head recorded elsewhere (VerifyOptions.Head)
	// is not in the chain: lines were cut off the end or the last ones
	// altered.
	ProblemHeadMissing = "head_missing"
)

// Problem is the first thing Verify found wrong.
type Problem struct {
	// Kind is one of the Problem* constants.
	Kind string `json:"kind"`
	// At is the line the problem is about: the unparseable line, the
	// altered line, the first line after the removed ones, the first line
	// out of place, the first inserted line. For head_missing it is the
	// last line.
	At Position `json:"at"`
	// Break is the first line whose prev_hash does not match the line
	// before it (zero for unparseable and head_missing).
	Break Position `json:"break,omitzero"`
	// Missing is how many lines were removed, from the lines' seq (0:
	// unknown or not a removal).
	Missing uint64 `json:"missing,omitempty"`
	// Detail explains the problem in a sentence.
	Detail string `json:"detail"`
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Head, when set, is a line hash recorded elsewhere earlier (e.g. the
	// LastHash of a previous Verify, or FileSink.Head): it must be the
	// hash of some line of the chain. The chain alone cannot show lines
	// cut off its end; this can.
	Head string
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	// Files and Lines count what was read (up to the problem, if any).
	Files int `json:"files"`
	Lines int `json:"lines"`
	// Genesis is true when the first line chains to the genesis (64
	// zeros); otherwise Anchor is its prev_hash: earlier lines (rotated
	// away, or not given) are taken on trust.
	Genesis bool   `json:"genesis"`
	Anchor  string `json:"anchor,omitempty"`
	// FirstSeq and LastSeq are the seq of the first and last lines;
	// LastHash is the hash of the last line (record it to check later with
	// VerifyOptions.Head).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash,omitempty"`
	// Problem is the first problem found; nil when the chain is intact.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the chain is intact.
func (r VerifyResult) OK() bool { return r.Problem == nil }

// chainLine is what Verify keeps of a line.
type chainLine struct {
	pos  Position
	idx  int
	seq  uint64
	prev string
	hash string
	// after is the position of the next line (set by findHash).
	after Position
}

// Verify checks the hash chain across files given oldest first (e.g.
// audit.jsonl.2 audit.jsonl.1 audit.jsonl): every line parses, and each
// line's prev_hash is the hash of the line before it. It stops at the first
// problem and says what it is: an unparseable line; an altered line; lines
// removed (the seq jumps); lines reordered (a line chains to a line that
// comes after it); lines inserted (a line chains to a line further back).
// The error is for files that cannot be read; a broken chain is
// VerifyResult.Problem.
func Verify(ctx context.Context, paths []string, o VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	if len(paths) == 0 {
		return res, errors.New("audit: verify: no files")
	}
	sc := newLineScanner(ctx, paths)
	defer sc.Close()
	var prev *chainLine
	headSeen := o.Head == ""
	for {
		raw, err := sc.scan()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Files = sc.next
		res.Lines++
		rec, perr := ParseLine(raw)
		if perr == nil && !validHash(rec.PrevHash) {
			perr = errors.New(`no valid "prev_hash"`)
		}
		if perr != nil {
			res.Problem = &Problem{Kind: ProblemUnparseable, At: sc.pos,
				Detail: fmt.Sprintf("%s is not a hash-chained audit line: %v", sc.pos, perr)}
			return res, nil
		}
		cur := &chainLine{pos: sc.pos, idx: sc.idx, seq: rec.Seq, prev: rec.PrevHash, hash: lineHash(raw)}
		switch {
		case prev == nil:
			res.FirstSeq = rec.Seq
			if rec.PrevHash == GenesisHash {
				res.Genesis = true
			} else {
				res.Anchor = rec.PrevHash
			}
		case rec.PrevHash != prev.hash:
			// The next line tells whether cur itself was changed.
			var next *chainLine
			if raw, err := sc.scan(); err == nil {
				if r, err := ParseLine(raw); err == nil {
					next = &chainLine{pos: sc.pos, idx: sc.idx, prev: r.PrevHash}
				}
			} else if !errors.Is(err, io.EOF) {
				return res, err
			}
			sc.Close()
			p, err := classify(ctx, paths, prev, cur, next)
			if err != nil {
				return res, err
			}
			res.Problem = p
			return res, nil
		}
		if !headSeen && cur.hash == o.Head {
			headSeen = true
		}
		res.LastSeq, res.LastHash = rec.Seq, cur.hash
		prev = cur
	}
	if prev == nil {
		return res, errors.New("audit: verify: the files hold no lines")
	}
	res.Files = len(paths)
	if !headSeen {
		res.Problem = &Problem{Kind: ProblemHeadMissing, At: prev.pos,
			Detail: fmt.Sprintf("no line hashes to the recorded head %s: lines after it were removed from the end, or the last lines altered", o.Head)}
	}
	return res, nil
}

// classify names the break between prev and cur (cur.prev != prev.hash).
// next is the line after cur, when there is one that parses.
func classify(ctx context.Context, paths []string, prev, cur, next *chainLine) (*Problem, error) {
	// Which line does cur chain to, and is cur a copy of an earlier line?
	found, err := findHashes(ctx, paths, cur.prev, cur.hash)
	if err != nil {
		return nil, err
	}
	target, first := found[0], found[1]
	p := &Problem{At: cur.pos, Break: cur.pos}
	switch {
	case first != nil && first.idx < cur.idx:
		p.Kind = ProblemInserted
		p.Detail = fmt.Sprintf("%s is a copy of %s", cur.pos, first.pos)
		return p, nil
	case target != nil && target.idx > cur.idx:
		p.Kind = ProblemReordered
		p.Detail = fmt.Sprintf("%s chains to %s, which comes after it: lines are out of order", cur.pos, target.pos)
		return p, nil
	case target != nil && target.idx < prev.idx:
		p.Kind = ProblemInserted
		p.At = target.after
		if target.after == prev.pos {
			p.Detail = fmt.Sprintf("%s chains to %s: %s between them was not written in this chain", cur.pos, target.pos, prev.pos)
		} else {
			p.Detail = fmt.Sprintf("%s chains to %s: the lines from %s to %s were not written in this chain", cur.pos, target.pos, target.after, prev.pos)
		}
		return p, nil
	}
	// cur chains to no line given: either prev changed, or lines were
	// removed between them. The seq tells which.
	switch {
	case prev.seq == 0 || cur.seq == 0:
		p.Kind, p.At = ProblemAltered, prev.pos
		p.Detail = fmt.Sprintf("%s does not chain to %s: that line was changed, or lines were removed after it (the lines carry no seq to tell)", cur.pos, prev.pos)
	case cur.seq == prev.seq+1:
		p.Kind = ProblemAltered
		if next != nil && next.prev != cur.hash {
			// cur's own bytes (its prev_hash) changed too: the next line
			// does not chain to it either.
			p.Detail = fmt.Sprintf("%s was changed (its prev_hash no longer matches %s, and %s no longer chains to it)", cur.pos, prev.pos, next.pos)
		} else {
			p.At = prev.pos
			p.Detail = fmt.Sprintf("%s was changed: %s (seq %d) follows it but recorded another hash for it", prev.pos, cur.pos, cur.seq)
		}
	case cur.seq > prev.seq+1:
		p.Kind = ProblemRemoved
		p.Missing = cur.seq - prev.seq - 1
		p.Detail = fmt.Sprintf("%d line(s) removed between %s (seq %d) and %s (seq %d)", p.Missing, prev.pos, prev.seq, cur.pos, cur.seq)
	default:
		p.Kind = ProblemReordered
		p.Detail = fmt.Sprintf("%s (seq %d) follows %s (seq %d) and chains to no line given: lines are out of order, and some are missing", cur.pos, cur.seq, prev.pos, prev.seq)
	}
	return p, nil
}

// findHashes returns, for each of hashes, the first line of paths with
// that hash (nil: none), with the position of the line after it.
func findHashes(ctx context.Context, paths []string, hashes ...string) ([]*chainLine, error) {
	sc := newLineScanner(ctx, paths)
	defer sc.Close()
	found := make([]*chainLine, len(hashes))
	var waiting []*chainLine // found lines whose next position is not known yet
	for {
		raw, err := sc.scan()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		for _, f := range waiting {
			f.after = sc.pos
		}
		waiting = waiting[:0]
		h := lineHash(raw)
		done := true
		for i, want := range hashes {
			if found[i] == nil && h == want {
				found[i] = &chainLine{pos: sc.pos, idx: sc.idx, hash: h}
				waiting = append(waiting, found[i])
			}
			done = done && found[i] != nil
		}
		if done && len(waiting) == 0 {
			return found, nil
		}
	}
}
