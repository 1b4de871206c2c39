package kv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
)

// Tx is one transaction: typed reads and writes of keys, outgoing messages,
// and an applied marker, all taking effect together at commit or not at
// all. Reads record the revision they saw; commit checks every one of them.
//
// A Tx belongs to one task and is not safe for concurrent use. Reads within
// a Tx are repeatable and see the Tx's own writes.
type Tx struct {
	s        *Store
	readOnly bool
	done     bool

	reads  map[string]uint64 // subject -> revision read (0: absent)
	seen   map[string]entry  // subject -> value read, for repeatable reads
	writes map[string]entry  // subject -> value to write (rev unused)
	order  []string          // write subjects in first-write order
	msgs   []*nats.Msg       // outgoing messages, in order
	marker uint64            // event sequence to mark applied, 0: none

	// tombTTL, if set, is the lifetime of the transaction's deletions in
	// place of the store's, and their Nats-TTL (a tombstone copied forward
	// keeps its time).
	tombTTL string
}

func (s *Store) newTx(readOnly bool) *Tx {
	return &Tx{
		s:        s,
		readOnly: readOnly,
		reads:    make(map[string]uint64),
		seen:     make(map[string]entry),
	}
}

// Get decodes the value of key into v with the store's codec. It returns
// [ErrNotFound] if the key has no value.
func (tx *Tx) Get(ctx context.Context, key string, v any) error {
	b, err := tx.GetBytes(ctx, key)
	if err != nil {
		return err
	}
	if err := tx.s.codec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("kv: decode %q: %w", key, err)
	}
	return nil
}

// Lookup decodes the value of key into v and reports whether the key has
// a value. A missing key leaves v as it was, so v can hold the default.
func (tx *Tx) Lookup(ctx context.Context, key string, v any) (bool, error) {
	return found(tx.Get(ctx, key, v))
}

// found turns a read's ErrNotFound into false.
func found(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// GetBytes returns the raw value of key. The slice must not be modified.
func (tx *Tx) GetBytes(ctx context.Context, key string) ([]byte, error) {
	e, err := tx.lookup(ctx, key, true)
	if err != nil {
		return nil, err
	}
	return e.value()
}

// lookup returns what the transaction sees of key: its own write, what it
// read before, or the latest value the store knows, which it records as
// read if record is set.
func (tx *Tx) lookup(ctx context.Context, key string, record bool) (entry, error) {
	if tx.done {
		return entry{}, ErrTxDone
	}
	subj, err := tx.s.world.Key(key)
	if err != nil {
		return entry{}, fmt.Errorf("kv: key %q: %w", key, err)
	}
	if w, ok := tx.writes[subj]; ok {
		return w, nil
	}
	if e, ok := tx.seen[subj]; ok {
		return e, nil
	}
	e, err := tx.s.load(ctx, subj)
	if err != nil || !record {
		return e, err
	}
	tx.seen[subj] = e
	tx.reads[subj] = e.rev
	return e, nil
}

// Peek decodes into v the latest value of key that the store knows, and
// reports whether the key has one. Unlike Get it records no read: the
// commit does not check it, and the transaction never conflicts over it.
// The value is committed state, from the store's cache (which follows the
// world's stream) or the server, and may be a moment old: use it for what
// a task shows, never for what it decides (a snapshot of what a player
// starts to see, not whether a cell is free). It sees the transaction's
// own writes, and what the transaction has read.
func (tx *Tx) Peek(ctx context.Context, key string, v any) (bool, error) {
	e, err := tx.lookup(ctx, key, false)
	if err != nil {
		return false, err
	}
	b, err := e.value()
	if ok, err := found(err); !ok {
		return false, err
	}
	if err := tx.s.codec.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("kv: decode %q: %w", key, err)
	}
	return true, nil
}

// Prefetch loads the latest values of keys that the transaction has not
// read yet and the store's cache does not hold, in one round trip per
// 1,000 keys, so that the Gets that follow are answered from memory. It
// records no read: only Get does, and commit checks what Get saw as usual.
// Use it before reading many keys, most of them not cached.
func (tx *Tx) Prefetch(ctx context.Context, keys ...string) error {
	if tx.done {
		return ErrTxDone
	}
	subjects := make([]string, 0, len(keys))
	for _, key := range keys {
		subj, err := tx.s.world.Key(key)
		if err != nil {
			return fmt.Errorf("kv: key %q: %w", key, err)
		}
		_, seen := tx.seen[subj]
		_, wrote := tx.writes[subj]
		if _, cached := tx.s.cache.get(subj); !seen && !wrote && !cached {
			subjects = append(subjects, subj)
		}
	}
	if len(subjects) == 1 {
		// One key is one direct get: a batch would cost a subscription
		// of its own.
		_, err := tx.s.load(ctx, subjects[0])
		return err
	}
	return tx.s.prefetch(ctx, subjects)
}

// List returns the keys under prefix that have a value, sorted: the keys
// that extend prefix by one or more tokens ("a.b" lists "a.b.c" and
// "a.b.c.d", not "a.b" itself nor "a.bc"). It reads their values from the
// server, not the cache, so that later Gets of them are answered by the
// transaction, and it records the range itself as read: the commit fails
// with [ErrConflict] if any key under prefix has been written or deleted
// since, a key that did not exist when List ran included. The keys the
// transaction has written under prefix are included as written.
//
// Writes of different keys under one prefix do not conflict with each
// other; only the transactions that List the prefix conflict with them. A
// range of more than 1,024 keys is read through a consumer, in a few
// milliseconds more.
func (tx *Tx) List(ctx context.Context, prefix string) ([]string, error) {
	if tx.done {
		return nil, ErrTxDone
	}
	subj, err := tx.s.world.Key(prefix)
	if err != nil {
		return nil, fmt.Errorf("kv: prefix %q: %w", prefix, err)
	}
	filter := subj + ".>"
	if _, listed := tx.reads[filter]; !listed {
		last, err := tx.s.scan(ctx, filter, func(subj string, e entry) {
			if _, ok := tx.seen[subj]; !ok {
				tx.seen[subj] = e
			}
		})
		if err != nil {
			return nil, err
		}
		tx.reads[filter] = last
	}
	under := subj + "."
	var keys []string
	add := func(subj string, e entry) {
		if e.deleted || !strings.HasPrefix(subj, under) {
			return
		}
		if k, ok := tx.s.world.ParseKey(subj); ok {
			keys = append(keys, k)
		}
	}
	for subj, e := range tx.seen {
		if _, wrote := tx.writes[subj]; !wrote {
			add(subj, e)
		}
	}
	for subj, e := range tx.writes {
		add(subj, e)
	}
	slices.Sort(keys)
	return keys, nil
}

// Exists reports whether key has a value, recording the read like Get.
func (tx *Tx) Exists(ctx context.Context, key string) (bool, error) {
	_, err := tx.GetBytes(ctx, key)
	return found(err)
}

func (e entry) value() ([]byte, error) {
	if e.deleted {
		return nil, ErrNotFound
	}
	return e.val, nil
}

// Put encodes v with the store's codec and writes it to key at commit.
func (tx *Tx) Put(key string, v any) error {
	b, err := tx.s.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("kv: encode %q: %w", key, err)
	}
	return tx.PutBytes(key, b)
}

// PutBytes writes b to key at commit. The Tx keeps b; do not modify it.
func (tx *Tx) PutBytes(key string, b []byte) error {
	return tx.write(key, entry{val: b})
}

// Delete removes key at commit. Deleting a missing key is not an error.
func (tx *Tx) Delete(key string) error {
	return tx.write(key, entry{deleted: true})
}

func (tx *Tx) write(key string, e entry) error {
	if err := tx.writable(); err != nil {
		return err
	}
	subj, err := tx.s.world.Key(key)
	if err != nil {
		return fmt.Errorf("kv: key %q: %w", key, err)
	}
	if tx.writes == nil {
		tx.writes = make(map[string]entry)
	}
	if _, ok := tx.writes[subj]; !ok {
		tx.order = append(tx.order, subj)
	}
	tx.writes[subj] = e
	return nil
}

// reservedHeaders may not be set on outgoing messages: the commit protocol
// owns them.
var reservedHeaders = []string{
	jetstream.MsgIDHeader,
	jetstream.ExpectedStreamHeader,
	jetstream.ExpectedLastSeqHeader,
	jetstream.ExpectedLastSubjSeqHeader,
	jetstream.ExpectedLastSubjSeqSubjHeader,
	jetstream.ExpectedLastMsgIDHeader,
	jetstream.MsgRollup,
	"Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit",
}

// carries reports whether m, an outgoing message of a transaction, can
// carry a read's check: it has no server header but its TTL (Publish
// refuses the expectations and the rollup; a schedule's are kept apart).
func carries(m *nats.Msg) bool {
	for k := range m.Header {
		if strings.HasPrefix(k, "Nats-") && k != jetstream.MsgTTLHeader {
			return false
		}
	}
	return true
}

// Publish adds an outgoing message, sent only if the transaction commits
// and then exactly once. The subject must be one of the world's outgoing
// subjects: an event, a session, a channel or a schedule (see package bus).
func (tx *Tx) Publish(m *nats.Msg) error {
	if err := tx.writable(); err != nil {
		return err
	}
	w := tx.s.world
	if !outgoing(w, m.Subject) {
		return fmt.Errorf("%w: %q", ErrInvalidSubject, m.Subject)
	}
	for _, h := range reservedHeaders {
		if m.Header.Get(h) != "" {
			return fmt.Errorf("%w: header %s is reserved", ErrInvalidSubject, h)
		}
	}
	cp := nats.NewMsg(m.Subject)
	cp.Data = m.Data
	for k, v := range m.Header {
		cp.Header[k] = append([]string(nil), v...)
	}
	tx.msgs = append(tx.msgs, cp)
	return nil
}

func outgoing(w bus.World, subject string) bool {
	if _, _, ok := w.ParseEvent(subject); ok {
		return true
	}
	if _, ok := w.ParseSession(subject); ok {
		return true
	}
	if _, ok := w.ParseChannel(subject); ok {
		return true
	}
	if _, _, _, ok := w.ParseArea(subject); ok {
		return true
	}
	_, ok := w.ParseSchedule(subject)
	return ok
}

// MarkApplied records, in the same commit, that the event stored at stream
// sequence seq has been applied. The commit fails with [ErrConflict] if the
// event was already marked: an event's effects apply at most once.
func (tx *Tx) MarkApplied(seq uint64) error {
	if err := tx.writable(); err != nil {
		return err
	}
	tx.marker = seq
	return nil
}

// Discard ends the transaction without committing. Nothing it wrote or
// published takes effect. Discard after commit is a no-op.
func (tx *Tx) Discard() { tx.done = true }

// Keys returns the keys the transaction read and wrote, for diagnostics.
func (tx *Tx) Keys() (read, written []string) {
	for subj := range tx.reads {
		if k, ok := tx.s.world.ParseKey(subj); ok {
			read = append(read, k)
		}
	}
	for _, subj := range tx.order {
		if k, ok := tx.s.world.ParseKey(subj); ok {
			written = append(written, k)
		}
	}
	return read, written
}

func (tx *Tx) writable() error {
	if tx.done {
		return ErrTxDone
	}
	if tx.readOnly {
		return ErrReadOnly
	}
	return nil
}

// empty reports whether committing would change nothing.
func (tx *Tx) empty() bool {
	return len(tx.order) == 0 && len(tx.msgs) == 0 && tx.marker == 0
}

// request turns the transaction into a commit request: the messages of one
// atomic unit, and the sets the committer uses to keep conflicts apart.
func (tx *Tx) request() *commitReq {
	r := &commitReq{
		reads:  tx.reads,
		writes: make(map[string]struct{}, len(tx.order)+1),
		done:   make(chan error, 1),
	}
	w := tx.s.world
	// Writes, each checked against the revision read when there was one.
	// A write leaves the revision it supersedes stored, for compaction to
	// purge (see Store.Revisions). A deletion's tombstone says how long it
	// lives but has no Nats-TTL: were the server to remove it alone, a
	// value it superseded would be the key's again. A tombstone's copy
	// (Rewrite) has one, since the original stays below it until the
	// superseded revisions are purged.
	for _, subj := range tx.order {
		e := tx.writes[subj]
		m := nats.NewMsg(subj)
		if e.deleted {
			m.Header.Set(bus.HeaderOp, bus.OpDelete)
			m.Header.Set(bus.HeaderTombstoneTTL, cmp.Or(tx.tombTTL, tx.s.tombTTL))
			if tx.tombTTL != "" && tx.tombTTL != bus.TombstoneNever {
				m.Header.Set(jetstream.MsgTTLHeader, tx.tombTTL)
			}
		} else {
			m.Data = e.val
		}
		if rev, ok := tx.reads[subj]; ok {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		}
		r.writes[subj] = struct{}{}
		r.msgs = append(r.msgs, m)
		r.written = append(r.written, written{subj: subj, e: e, index: len(r.msgs) - 1})
	}
	// Keys only read are checked by asserting their last revision on a
	// message of the commit: first on its outgoing messages (a reply, a
	// channel's message), each of which can carry one such assertion about
	// any subject and carries none of its own, then on messages of their
	// own on the check subject. A range read by List asserts the last
	// revision of any key under its prefix (the subject is a wildcard).
	carriers := tx.msgs
	for subj, rev := range tx.reads {
		if _, ok := tx.writes[subj]; ok {
			continue
		}
		for len(carriers) > 0 && !carries(carriers[0]) {
			carriers = carriers[1:]
		}
		if len(carriers) > 0 {
			m := carriers[0]
			carriers = carriers[1:]
			m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subj)
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
			continue
		}
		m := nats.NewMsg(w.Check(0)) // numbered in its batch by the committer
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subj)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		r.msgs = append(r.msgs, m)
	}
	if tx.marker != 0 {
		subj := w.Done(tx.marker)
		m := nats.NewMsg(subj)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		r.msgs = append(r.msgs, m)
		r.writes[subj] = struct{}{}
	}
	r.msgs = append(r.msgs, tx.msgs...)
	return r
}

// Empty reports whether committing tx would change nothing: no writes, no
// messages, no marker.
func (tx *Tx) Empty() bool { return tx.empty() }
