package handlers

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// Scheduled tasks.
//
// A schedule is two things committed with the task that creates it: a
// record in state (starbus.sched.<id>: type, payload, due time, period) and
// an alarm message on sb.<world>.sched.<id> carrying the due time. Workers
// consume alarms through a durable consumer shared by the world's workers,
// hold each one on a local timer until it is due, then fire it: a
// transaction that reads the record (checking its revision), runs the
// handler for the record's type, and either deletes the record (one-shot)
// or advances its due time by one period and commits the next alarm
// (periodic). Firing is exactly once per due time: a second firing of the
// same due time, by a redelivered alarm or another worker, finds the record
// already moved on and does nothing. Cancelling deletes the record.
//
// JetStream's own message schedules (Nats-Schedule) keep the durability
// but not the precision: the server's scheduler runs at most every 250 ms
// and repeats no faster than once a second. So the due time lives here and
// the alarm is an ordinary stored message: durable, handed to another
// worker if its holder dies (late rather than never), redelivered after a
// restart of every worker and of the server.

// ScheduleID identifies a scheduled task, for [Task.Cancel].
type ScheduleID string

// schedule is the state record of a scheduled task.
type schedule struct {
	Type   string        `json:"type"`
	Data   []byte        `json:"data,omitempty"`
	Due    int64         `json:"due"`              // Unix nanoseconds
	Period time.Duration `json:"period,omitempty"` // 0: one-shot
	Region string        `json:"region"`
}

func scheduleKey(id ScheduleID) string { return "starbus.sched." + string(id) }

// After schedules a task of type typ with payload data to run once, delay
// from now, if this task commits.
func (t *Task) After(delay time.Duration, typ string, data []byte) (ScheduleID, error) {
	return t.schedule(delay, 0, typ, data)
}

// Every schedules a task of type typ to run every period, the first time one
// period from now, until cancelled, if this task commits. Runs never
// overlap: the next one is scheduled by the commit of the current one, for
// its due time plus one period (so a run's latency does not accumulate).
func (t *Task) Every(period time.Duration, typ string, data []byte) (ScheduleID, error) {
	if period <= 0 {
		return "", fmt.Errorf("handlers: Every: period %v must be positive", period)
	}
	return t.schedule(period, period, typ, data)
}

// Cancel stops a scheduled task, if this task commits. Cancelling one that
// already ran, or was cancelled, is not an error.
func (t *Task) Cancel(id ScheduleID) error {
	if bus.ValidName(string(id)) != nil {
		return fmt.Errorf("handlers: Cancel: invalid schedule id %q", id)
	}
	return t.tx.Delete(scheduleKey(id))
}

func (t *Task) schedule(delay, period time.Duration, typ string, data []byte) (ScheduleID, error) {
	if typ == "" {
		return "", errors.New("handlers: schedule: empty task type")
	}
	id := ScheduleID(nuid.Next())
	rec := schedule{Type: typ, Data: data, Due: time.Now().Add(max(delay, 0)).UnixNano(), Period: period, Region: t.Region}
	if rec.Region == "" {
		rec.Region = "sched"
	}
	if err := putSchedule(t.tx, id, rec); err != nil {
		return "", err
	}
	if err := t.alarm(id, rec.Due); err != nil {
		return "", err
	}
	return id, nil
}

func putSchedule(tx *kv.Tx, id ScheduleID, rec schedule) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.PutBytes(scheduleKey(id), b)
}

// alarm queues the alarm message of schedule id for due.
func (t *Task) alarm(id ScheduleID, due int64) error { return queueAlarm(t.tx, t.world, id, due) }

func queueAlarm(tx *kv.Tx, w bus.World, id ScheduleID, due int64) error {
	subj, err := w.Schedule(string(id))
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Header.Set(bus.HeaderDue, strconv.FormatInt(due, 10))
	return tx.Publish(m)
}

// fire runs the schedule an alarm is for, in t's transaction. It returns
// ok=false, with no effects, if the schedule was cancelled or this due time
// already fired.
func (r *Runtime) fire(ctx context.Context, t *Task, id ScheduleID, due int64) (ok bool, err error) {
	b, err := t.tx.GetBytes(ctx, scheduleKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		r.stats.staleAlarms.Add(1)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var rec schedule
	if err := json.Unmarshal(b, &rec); err != nil {
		return false, Permanent(fmt.Errorf("schedule %s: %w", id, err))
	}
	if rec.Due != due {
		r.stats.staleAlarms.Add(1)
		return false, nil
	}
	t.Type, t.Data, t.Region, t.Part, t.Schedule = rec.Type, rec.Data, rec.Region, string(id), id
	t.Due = time.Unix(0, rec.Due)
	if err := serve(ctx, r.cfg.Handler, t); err != nil {
		return false, err
	}
	if rec.Period <= 0 {
		return true, t.tx.Delete(scheduleKey(id))
	}
	// The next run is one period after this one was due. After downtime,
	// skip the runs that were missed rather than firing them all at once.
	rec.Due += int64(rec.Period)
	if now := time.Now().UnixNano(); rec.Due < now {
		rec.Due = now + int64(rec.Period) - (now-rec.Due)%int64(rec.Period)
	}
	if err := putSchedule(t.tx, id, rec); err != nil {
		return false, err
	}
	return true, t.alarm(id, rec.Due)
}

// alarms consumes alarm messages and hands each to the task queue when it
// is due. Alarms due later than half the ack wait are handed back to the
// server with a delay, so a worker holds only the alarms due soon.
func (r *Runtime) alarms(ctx context.Context, cons jetstream.Consumer, q *keyQueue) error {
	iter, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("handlers: schedule consume: %w", err)
	}
	in := make(chan jetstream.Msg)
	go func() { // joined below: it ends when iter stops
		defer close(in)
		for {
			m, err := iter.Next()
			if err != nil {
				return
			}
			select {
			case in <- m:
			case <-ctx.Done():
				_ = m.Nak()
				return
			}
		}
	}()
	defer func() {
		iter.Stop()
		for range in { // join the reader
		}
	}()

	hold := r.cfg.AckWait / 2
	var pending alarmHeap
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].due))
		}
		select {
		case <-ctx.Done():
			for _, a := range pending {
				_ = a.m.Nak()
			}
			return nil
		case m, ok := <-in:
			if !ok {
				return nil
			}
			due, err := strconv.ParseInt(m.Headers().Get(bus.HeaderDue), 10, 64)
			if err != nil {
				r.deadLetter(ctx, m, 0, "alarm without a due time")
				continue
			}
			at := time.Unix(0, due)
			if wait := time.Until(at); wait > hold {
				_ = m.NakWithDelay(wait - hold/2)
				continue
			}
			heap.Push(&pending, alarm{due: at, m: m})
		case <-timer.C:
		}
		for len(pending) > 0 && !time.Now().Before(pending[0].due) {
			a := heap.Pop(&pending).(alarm)
			id, _ := r.world.ParseSchedule(a.m.Subject())
			if !q.push("sched."+id, item{m: a.m}) {
				_ = a.m.Nak()
			}
		}
	}
}

type alarm struct {
	due time.Time
	m   jetstream.Msg
}

type alarmHeap []alarm

func (h alarmHeap) Len() int           { return len(h) }
func (h alarmHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h alarmHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *alarmHeap) Push(x any)        { *h = append(*h, x.(alarm)) }
func (h *alarmHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}

// initWorld runs Config.Init once per world: the first runtime to commit
// the world's init marker wins, the others find it and do nothing.
func (r *Runtime) initWorld(ctx context.Context) error {
	if r.cfg.Init == nil {
		return nil
	}
	return r.store.Update(ctx, func(tx *kv.Tx) error {
		done, err := tx.Exists(ctx, initKey)
		if err != nil || done {
			return err
		}
		t := &Task{Type: bus.EventInit, Region: "init", Part: "init", tx: tx, world: r.world, outTTL: r.outTTL, Attempt: 1}
		tctx, cancel := context.WithTimeout(ctx, r.cfg.InitTimeout)
		defer cancel()
		if err := serve(tctx, r.cfg.Init, t); err != nil {
			return fmt.Errorf("handlers: world init: %w", err)
		}
		return tx.Put(initKey, time.Now().UTC())
	})
}

const initKey = "starbus.init"
