package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Problem kinds reported by Verify.
const (
	// ProblemUnparseable: a line is not a hash-chained audit line.
	ProblemUnparseable = "unparseable"
	// ProblemAltered: a line's bytes changed since it was written (in a
	// keyed chain: its MAC does not match, so it was edited or forged).
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
	// ProblemUnkeyed: verifying with a chain key, a line carries no MAC
	// where one is required (after the first keyed line, or no line of the
	// files is keyed): it was forged, or written without the key.
	ProblemUnkeyed = "unkeyed"
	// ProblemStartMissing: verifying with a chain key, the first line does
	// not start the chain (its link is not the genesis): older lines or
	// files were removed. VerifyOptions.AllowPartial accepts it.
	ProblemStartMissing = "start_missing"
	// ProblemTruncated: the chain ends before the newest checkpoint of it:
	// lines were cut off the end, or the newest files were not given.
	ProblemTruncated = "truncated"
	// ProblemCheckpointMismatch: a line is not the one a checkpoint
	// recorded at its seq: the chain was rewritten.
	ProblemCheckpointMismatch = "checkpoint_mismatch"
	// ProblemCheckpointChain: checkpoints were given, but none of them is
	// of this chain.
	ProblemCheckpointChain = "checkpoint_chain"
)

// Problem is the first thing Verify found wrong.
type Problem struct {
	// Kind is one of the Problem* constants.
	Kind string `json:"kind"`
	// At is the line the problem is about: the unparseable line, the
	// altered line, the first line after the removed ones, the first line
	// out of place, the first inserted line. For head_missing and
	// truncated it is the last line, for start_missing the first.
	At Position `json:"at"`
	// Break is the first line whose link does not match the line before
	// it (zero when there is no such line).
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
	// hash (or, keyed, the MAC) of some line of the chain. The chain alone
	// cannot show lines cut off its end; this can.
	Head string
	// Key is the chain key (ChainKeySize bytes). With it every line's MAC
	// is checked, lines without one are accepted only before the first
	// keyed line (written before the key was set, and bound by it), and
	// the chain must start at the genesis unless AllowPartial. Without it
	// a keyed chain cannot be verified (ErrChainKeyRequired), and an
	// unkeyed one is checked as before: that proves nothing against anyone
	// who can write the files.
	Key []byte
	// Checkpoints are checkpoints whose signatures were verified
	// (ReadCheckpoints). Those of this chain are checked: the line at a
	// checkpoint's seq must have its MAC, and the chain must reach the
	// newest one. Given checkpoints of which none is of this chain are a
	// problem (ProblemCheckpointChain).
	Checkpoints []Checkpoint
	// AllowPartial accepts a keyed chain that starts after the genesis
	// (rotation removed the oldest files): its first line is taken on
	// trust, and checkpoints older than it are not checked.
	AllowPartial bool
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	// Files and Lines count what was read (up to the problem, if any).
	Files int `json:"files"`
	Lines int `json:"lines"`
	// Genesis is true when the first line chains to the genesis (64
	// zeros); otherwise Anchor is its prev_hash (or prev_mac): earlier
	// lines (rotated away, or not given) are taken on trust.
	Genesis bool   `json:"genesis"`
	Anchor  string `json:"anchor,omitempty"`
	// FirstSeq and LastSeq are the seq of the first and last lines;
	// LastHash is the hash (keyed: the MAC) of the last line (record it to
	// check later with VerifyOptions.Head).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash,omitempty"`
	// Keyed is true when the lines' MACs were checked with a chain key;
	// Chain is the chain's id, Unkeyed how many lines before the first
	// keyed one carry no MAC (written before the key was set).
	Keyed   bool   `json:"keyed"`
	Chain   string `json:"chain,omitempty"`
	Unkeyed int    `json:"unkeyed_lines,omitempty"`
	// Checkpoints counts the given checkpoints of this chain that were
	// checked against a line; NewestCheckpoint is the seq of the newest
	// checkpoint of this chain (0: none), which the chain reaches.
	Checkpoints      int    `json:"checkpoints"`
	NewestCheckpoint uint64 `json:"newest_checkpoint,omitempty"`
	// OtherCheckpoints counts given checkpoints of other chains (ignored).
	OtherCheckpoints int `json:"other_checkpoints,omitempty"`
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
	// hash is the hex SHA-256 of the line, what an unkeyed next line names
	// as its prev_hash; mac is what a keyed next line names as its
	// prev_mac: the line's own MAC when keyed, else the HMAC of its bytes
	// (empty without a key).
	hash  string
	mac   string
	keyed bool
	// after is the position of the next line (set by findHashes).
	after Position
}

// linkFor returns what a line (keyed or not) following l must name as its
// previous line.
func (l *chainLine) linkFor(keyed bool) string {
	if keyed {
		return l.mac
	}
	return l.hash
}

// verifier holds the state of one Verify.
type verifier struct {
	o   VerifyOptions
	m   *macer
	res VerifyResult
	// checkpoints of this chain by seq, once the chain's id is known.
	cps     map[uint64][]*Checkpoint
	cpReady bool
	newest  *Checkpoint
}

// Verify checks the chain across files given oldest first (e.g.
// audit.jsonl.2 audit.jsonl.1 audit.jsonl): every line parses, and each
// line's link names the line before it. It stops at the first problem and
// says what it is: an unparseable line; an altered line; lines removed
// (the seq jumps); lines reordered (a line chains to a line that comes
// after it); lines inserted (a line chains to a line further back). With
// VerifyOptions.Key it also checks each line's MAC, refuses lines without
// one after the first keyed line, a chain that does not start at the
// genesis (unless AllowPartial), and with Checkpoints a chain that
// disagrees with a checkpoint or ends before the newest. The error is for
// files that cannot be read (and ErrChainKeyRequired); a broken chain is
// VerifyResult.Problem.
func Verify(ctx context.Context, paths []string, o VerifyOptions) (VerifyResult, error) {
	v := &verifier{o: o}
	if len(paths) == 0 {
		return v.res, errors.New("audit: verify: no files")
	}
	if o.Key != nil {
		if len(o.Key) != ChainKeySize {
			return v.res, fmt.Errorf("audit: verify: the chain key is %d bytes, want %d", len(o.Key), ChainKeySize)
		}
		v.m = newMACer(o.Key)
		v.res.Keyed = true
	}
	res := &v.res
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
			return *res, err
		}
		res.Files = sc.next
		res.Lines++
		cur, rec, p, err := v.line(raw, sc.pos, sc.idx)
		if err != nil {
			return *res, err
		}
		if p == nil && prev == nil {
			p = v.first(cur)
		}
		if p == nil && prev != nil {
			p = v.order(prev, cur)
		}
		if p == nil && prev != nil && cur.prev != prev.linkFor(cur.keyed) {
			// The next line tells whether cur itself was changed.
			var next *chainLine
			if raw, err := sc.scan(); err == nil {
				if r, err := ParseLine(raw); err == nil {
					next = &chainLine{pos: sc.pos, idx: sc.idx, prev: cmp.Or(r.PrevMAC, r.PrevHash)}
				}
			} else if !errors.Is(err, io.EOF) {
				return *res, err
			}
			sc.Close()
			if p, err = v.classify(ctx, paths, prev, cur, next); err != nil {
				return *res, err
			}
		}
		if p == nil {
			p = v.checkpointAt(cur)
		}
		if p != nil {
			res.Problem = p
			return *res, nil
		}
		if !headSeen && (cur.hash == o.Head || (cur.keyed && cur.mac == o.Head)) {
			headSeen = true
		}
		res.LastSeq, res.LastHash = rec.Seq, cur.hash
		if cur.keyed {
			res.LastHash = cur.mac
		}
		prev = cur
	}
	if prev == nil {
		return *res, errors.New("audit: verify: the files hold no lines")
	}
	res.Files = len(paths)
	switch {
	case v.m != nil && res.Chain == "":
		res.Problem = &Problem{Kind: ProblemUnkeyed, At: prev.pos,
			Detail: "no line carries a MAC: the files were written without the chain key, or forged; a chain key was given, so every chain must hold keyed lines"}
	case !headSeen:
		res.Problem = &Problem{Kind: ProblemHeadMissing, At: prev.pos,
			Detail: fmt.Sprintf("no line hashes to the recorded head %s: lines after it were removed from the end, or the last lines altered", o.Head)}
	default:
		res.Problem = v.endCheckpoints(prev)
	}
	return *res, nil
}

// line parses one line and checks its own MAC. A problem with the line
// alone is returned as p.
func (v *verifier) line(raw []byte, pos Position, idx int) (cur *chainLine, rec Record, p *Problem, err error) {
	rec, perr := ParseLine(raw)
	keyed := perr == nil && rec.MAC != ""
	switch {
	case perr != nil:
	case keyed && (!validChainID(rec.Chain) || !validHash(rec.PrevMAC) || rec.Seq == 0):
		perr = errors.New(`a keyed line without a valid "chain", "seq" and "prev_mac"`)
	case !keyed && !validHash(rec.PrevHash):
		perr = errors.New(`no valid "prev_hash"`)
	}
	if perr != nil {
		return nil, rec, &Problem{Kind: ProblemUnparseable, At: pos,
			Detail: fmt.Sprintf("%s is not a hash-chained audit line: %v", pos, perr)}, nil
	}
	cur = &chainLine{pos: pos, idx: idx, seq: rec.Seq, prev: rec.PrevHash, hash: lineHash(raw), keyed: keyed}
	if !keyed {
		if v.m != nil {
			sum := v.m.mac(raw)
			cur.mac = hex.EncodeToString(sum[:])
		}
		return cur, rec, nil, nil
	}
	if v.m == nil {
		return nil, rec, nil, fmt.Errorf("%w: %s is keyed", ErrChainKeyRequired, pos)
	}
	cur.prev = rec.PrevMAC
	covered, mac, ok := splitKeyed(raw)
	if ok {
		got := v.m.mac(covered)
		ok = hmac.Equal(got[:], mac[:])
	}
	if !ok {
		return nil, rec, &Problem{Kind: ProblemAltered, At: pos,
			Detail: fmt.Sprintf("the MAC of %s does not match its content: the line was edited, or forged without the chain key", pos)}, nil
	}
	cur.mac = hex.EncodeToString(mac[:])
	switch {
	case v.res.Chain == "":
		v.res.Chain = rec.Chain
	case rec.Chain != v.res.Chain:
		return nil, rec, &Problem{Kind: ProblemInserted, At: pos,
			Detail: fmt.Sprintf("%s belongs to chain %s, not to chain %s of the lines before it", pos, rec.Chain, v.res.Chain)}, nil
	}
	return cur, rec, nil, nil
}

// first checks the first line: where the chain starts.
func (v *verifier) first(cur *chainLine) *Problem {
	v.res.FirstSeq = cur.seq
	if cur.prev == GenesisHash {
		v.res.Genesis = true
	} else {
		v.res.Anchor = cur.prev
	}
	if !cur.keyed && v.m != nil {
		v.res.Unkeyed++
	}
	if v.m != nil && !v.res.Genesis && !v.o.AllowPartial {
		return &Problem{Kind: ProblemStartMissing, At: cur.pos,
			Detail: fmt.Sprintf("the chain does not start at %s (seq %d): the lines before it were removed; if rotation removed the oldest files (audit.file.max_files), verify with --allow-partial", cur.pos, cur.seq)}
	}
	return nil
}

// order checks what a keyed chain requires of a line after prev: no
// unkeyed line after a keyed one.
func (v *verifier) order(prev, cur *chainLine) *Problem {
	if v.m == nil || cur.keyed {
		return nil
	}
	if prev.keyed {
		return &Problem{Kind: ProblemUnkeyed, At: cur.pos, Break: cur.pos,
			Detail: fmt.Sprintf("%s carries no MAC but follows keyed lines: it was appended without the chain key (forged)", cur.pos)}
	}
	v.res.Unkeyed++
	return nil
}

// checkpointAt checks a keyed line against the checkpoint of its seq, if
// one was given.
func (v *verifier) checkpointAt(cur *chainLine) *Problem {
	if !cur.keyed || len(v.o.Checkpoints) == 0 {
		return nil
	}
	if !v.cpReady {
		v.cpReady = true
		v.cps = map[uint64][]*Checkpoint{}
		for i := range v.o.Checkpoints {
			cp := &v.o.Checkpoints[i]
			if cp.Chain != v.res.Chain {
				v.res.OtherCheckpoints++
				continue
			}
			v.cps[cp.Seq] = append(v.cps[cp.Seq], cp)
			if v.newest == nil || cp.Seq > v.newest.Seq {
				v.newest = cp
			}
		}
	}
	for _, cp := range v.cps[cur.seq] {
		v.res.Checkpoints++
		if cp.MAC != cur.mac {
			return &Problem{Kind: ProblemCheckpointMismatch, At: cur.pos,
				Detail: fmt.Sprintf("%s (seq %d) is not the line the checkpoint of %s recorded: the chain was rewritten", cur.pos, cur.seq, cp.Time.Format(time.RFC3339Nano))}
		}
	}
	return nil
}

// endCheckpoints checks that the chain, ending at last, reaches the newest
// checkpoint of it.
func (v *verifier) endCheckpoints(last *chainLine) *Problem {
	if len(v.o.Checkpoints) == 0 {
		return nil
	}
	if v.newest == nil {
		return &Problem{Kind: ProblemCheckpointChain, At: last.pos,
			Detail: fmt.Sprintf("none of the %d checkpoint(s) given is of chain %s: give the checkpoints the gateway emitted for these files", len(v.o.Checkpoints), v.res.Chain)}
	}
	v.res.NewestCheckpoint = v.newest.Seq
	if v.newest.Seq > last.seq {
		return &Problem{Kind: ProblemTruncated, At: last.pos,
			Detail: fmt.Sprintf("the chain ends at seq %d (%s), but the checkpoint of %s records seq %d: %d line(s) were cut off the end, or the newest files were not given",
				last.seq, last.pos, v.newest.Time.Format(time.RFC3339Nano), v.newest.Seq, v.newest.Seq-last.seq)}
	}
	return nil
}

// classify names the break between prev and cur (cur.prev != prev.hash).
// next is the line after cur, when there is one that parses.
func (v *verifier) classify(ctx context.Context, paths []string, prev, cur, next *chainLine) (*Problem, error) {
	// Which line does cur chain to, and is cur a copy of an earlier line?
	found, err := v.findHashes(ctx, paths, cur.prev, cur.hash)
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
		if next != nil && next.prev != cur.hash && next.prev != cur.mac {
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
// that hash or MAC (nil: none), with the position of the line after it.
func (v *verifier) findHashes(ctx context.Context, paths []string, hashes ...string) ([]*chainLine, error) {
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
		h, mac := lineHash(raw), ""
		if v.m != nil {
			if r, err := ParseLine(raw); err == nil && r.MAC != "" {
				mac = r.MAC
			} else {
				sum := v.m.mac(raw)
				mac = hex.EncodeToString(sum[:])
			}
		}
		done := true
		for i, want := range hashes {
			if found[i] == nil && (h == want || (mac != "" && mac == want)) {
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
