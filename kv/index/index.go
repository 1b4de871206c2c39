package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tidwall/buntdb"

	"github.com/starbus/starbus/bus"
)

// Errors returned by an [Index].
var (
	// ErrNoField reports an ordered query on a field the index was not
	// opened with (Options.Ordered).
	ErrNoField = errors.New("index: no such ordered field")
	// ErrNoPoints reports an area query on an index opened without
	// Options.Point.
	ErrNoPoints = errors.New("index: no points")
	// ErrClosed reports use of a closed index.
	ErrClosed = errors.New("index: closed")
)

// Options configures an [Index].
type Options struct {
	// Prefix selects the keys the index holds: every key that starts with
	// it. It is one or more whole tokens followed by a dot ("gw.pos.").
	// Required.
	Prefix string
	// Ordered names fields of the keys' values (JSON, the store's default
	// codec) to keep an ordered index on each, as gjson paths ("score",
	// "stats.hp"). [Index.Ascend] and [Index.Descend] take these names.
	Ordered []string
	// Point, if set, places a key's value on a plane for [Index.Within]
	// and [Index.Nearby]; a value it returns ok=false for is left out of
	// them. It runs on the index's feed goroutine and must not block.
	Point func(key string, value []byte) (x, y float64, ok bool)
	// Logger receives the index's logs (default: discard).
	Logger *slog.Logger
}

// Index is a local, queryable copy of the keys under a prefix of one
// world's state. It is safe for concurrent use. [Open] starts following the
// world's stream; [Index.Close] stops.
type Index struct {
	db     *buntdb.DB
	opts   Options
	w      bus.World
	log    *slog.Logger
	cc     jetstream.ConsumeContext
	caught chan struct{} // closed, by synced, once the index holds what was stored at Open
	synced func()
	until  uint64 // the stream sequence that marks it
	closed atomic.Bool
	fields map[string]bool
}

// Keys inside the buntdb database: a value under "v:<key>", its point
// under "p:<key>".
const (
	valPrefix   = "v:"
	pointPrefix = "p:"
	pointsIndex = "points"
)

func orderIndex(field string) string { return "o:" + field }

// Open returns an index of the keys under opts.Prefix in world w, whose
// stream must be provisioned. It starts with every key's latest value and
// then follows each new write; [Index.Synced] tells when the start is done.
func Open(ctx context.Context, js jetstream.JetStream, w bus.World, opts Options) (*Index, error) {
	if opts.Prefix == "" || !strings.HasSuffix(opts.Prefix, ".") || bus.ValidKey(strings.TrimSuffix(opts.Prefix, ".")) != nil {
		return nil, fmt.Errorf("index: prefix %q: want whole key tokens and a final dot", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := buntdb.Open(":memory:")
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	ix := &Index{db: db, opts: opts, w: w, log: opts.Logger, caught: make(chan struct{}), fields: map[string]bool{}}
	ix.synced = sync.OnceFunc(func() { close(ix.caught) })
	fail := func(err error) (*Index, error) {
		db.Close()
		return nil, err
	}
	for _, f := range opts.Ordered {
		if f == "" || ix.fields[f] {
			return fail(fmt.Errorf("index: ordered field %q: empty or repeated", f))
		}
		ix.fields[f] = true
		if err := db.CreateIndex(orderIndex(f), valPrefix+"*", buntdb.IndexJSON(f)); err != nil {
			return fail(fmt.Errorf("index: ordered field %q: %w", f, err))
		}
	}
	if opts.Point != nil {
		if err := db.CreateSpatialIndex(pointsIndex, pointPrefix+"*", buntdb.IndexRect); err != nil {
			return fail(fmt.Errorf("index: points: %w", err))
		}
	}

	prefixSubj, err := w.Key(strings.TrimSuffix(opts.Prefix, "."))
	if err != nil {
		return fail(fmt.Errorf("index: prefix %q: %w", opts.Prefix, err))
	}
	filter := prefixSubj + ".>"
	stream, err := js.Stream(ctx, w.Stream())
	if err != nil {
		return fail(fmt.Errorf("index: %s: %w", w.Stream(), err))
	}
	// The latest write under the prefix now: once the feed has applied it,
	// the index holds everything that was stored when it opened.
	switch last, err := stream.GetLastMsgForSubject(ctx, filter); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		ix.synced()
	case err != nil:
		return fail(fmt.Errorf("index: %s: %w", filter, err))
	default:
		ix.until = last.Sequence
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fail(fmt.Errorf("index: follow %s: %w", filter, err))
	}
	if ix.cc, err = cons.Consume(ix.apply); err != nil {
		return fail(fmt.Errorf("index: follow %s: %w", filter, err))
	}
	return ix, nil
}

// apply takes one write from the stream into the database.
func (ix *Index) apply(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	key, ok := ix.w.ParseKey(m.Subject())
	if ok && strings.HasPrefix(key, ix.opts.Prefix) {
		deleted := bus.IsDelete(m.Headers())
		err = ix.db.Update(func(tx *buntdb.Tx) error {
			if deleted {
				return errors.Join(del(tx, valPrefix+key), del(tx, pointPrefix+key))
			}
			if _, _, err := tx.Set(valPrefix+key, string(m.Data()), nil); err != nil {
				return err
			}
			if ix.opts.Point == nil {
				return nil
			}
			if x, y, ok := ix.opts.Point(key, m.Data()); ok {
				_, _, err := tx.Set(pointPrefix+key, buntdb.Point(x, y), nil)
				return err
			}
			return del(tx, pointPrefix+key)
		})
		if err != nil {
			ix.log.Warn("index: write not applied", "key", key, "err", err)
		}
	}
	if meta.Sequence.Stream >= ix.until {
		ix.synced()
	}
}

// del deletes key if it is there.
func del(tx *buntdb.Tx, key string) error {
	if _, err := tx.Delete(key); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
		return err
	}
	return nil
}

// Synced waits until the index holds every key under its prefix as it was
// stored when the index opened (it follows later writes as they come).
func (ix *Index) Synced(ctx context.Context) error {
	select {
	case <-ix.caught:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// view runs fn in a read transaction of the database, unless the index
// is closed.
func (ix *Index) view(fn func(tx *buntdb.Tx) error) error {
	if ix.closed.Load() {
		return ErrClosed
	}
	err := ix.db.View(fn)
	if errors.Is(err, buntdb.ErrDatabaseClosed) {
		return ErrClosed
	}
	return err
}

// Get returns the value the index holds for key.
func (ix *Index) Get(key string) (value []byte, ok bool) {
	_ = ix.view(func(tx *buntdb.Tx) error {
		v, err := tx.Get(valPrefix + key)
		if err == nil {
			value, ok = []byte(v), true
		}
		return nil
	})
	return value, ok
}

// Len returns the number of keys the index holds.
func (ix *Index) Len() int {
	n := 0
	_ = ix.view(func(tx *buntdb.Tx) error {
		return tx.AscendKeys(valPrefix+"*", func(string, string) bool { n++; return true })
	})
	return n
}

// Ascend calls fn with each key and value in ascending order of field (one
// of Options.Ordered), until fn returns false. fn must not call the index.
func (ix *Index) Ascend(field string, fn func(key string, value []byte) bool) error {
	return ix.ordered(field, false, fn)
}

// Descend is [Index.Ascend] in descending order: a leaderboard.
func (ix *Index) Descend(field string, fn func(key string, value []byte) bool) error {
	return ix.ordered(field, true, fn)
}

func (ix *Index) ordered(field string, desc bool, fn func(key string, value []byte) bool) error {
	if !ix.fields[field] {
		return fmt.Errorf("%w: %q", ErrNoField, field)
	}
	return ix.view(func(tx *buntdb.Tx) error {
		iter := func(k, v string) bool { return fn(strings.TrimPrefix(k, valPrefix), []byte(v)) }
		if desc {
			return tx.Descend(orderIndex(field), iter)
		}
		return tx.Ascend(orderIndex(field), iter)
	})
}

// Within calls fn with each key whose point lies in the rectangle from
// (minX, minY) to (maxX, maxY), edges included, and its value, until fn
// returns false; in no particular order. fn must not call the index.
func (ix *Index) Within(minX, minY, maxX, maxY float64, fn func(key string, value []byte) bool) error {
	if ix.opts.Point == nil {
		return ErrNoPoints
	}
	return ix.view(func(tx *buntdb.Tx) error {
		var err error
		rerr := tx.Intersects(pointsIndex, buntdb.Rect([]float64{minX, minY}, []float64{maxX, maxY}), func(k, _ string) bool {
			key := strings.TrimPrefix(k, pointPrefix)
			v, gerr := tx.Get(valPrefix + key)
			if gerr != nil {
				err = gerr
				return false
			}
			return fn(key, []byte(v))
		})
		return errors.Join(rerr, err)
	})
}

// Nearby calls fn with the keys whose points are nearest to (x, y), the
// nearest first, each with its value and its distance, until fn returns
// false. fn must not call the index.
func (ix *Index) Nearby(x, y float64, fn func(key string, value []byte, dist float64) bool) error {
	if ix.opts.Point == nil {
		return ErrNoPoints
	}
	return ix.view(func(tx *buntdb.Tx) error {
		var err error
		rerr := tx.Nearby(pointsIndex, buntdb.Point(x, y), func(k, _ string, d2 float64) bool {
			key := strings.TrimPrefix(k, pointPrefix)
			v, gerr := tx.Get(valPrefix + key)
			if gerr != nil {
				err = gerr
				return false
			}
			return fn(key, []byte(v), math.Sqrt(d2))
		})
		return errors.Join(rerr, err)
	})
}

// Close stops following the stream and frees the database. Queries after
// it return [ErrClosed].
func (ix *Index) Close() error {
	if ix.closed.Swap(true) {
		return nil
	}
	ix.cc.Stop()
	<-ix.cc.Closed()
	return ix.db.Close()
}
