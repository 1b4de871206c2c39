package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// FireNow makes every pending schedule of task type typ ([Task.After],
// [Task.Every]) due now, in tx, and reports how many it moved: once tx
// commits, each fires at once instead of at its time, exactly once, and a
// periodic one goes on one period after that. Schedules already due are
// left as they are. It is for tests that must not wait for timers
// (package starbustest, World.Fire) and for tools: tasks cannot reach it.
func FireNow(ctx context.Context, tx *kv.Tx, w bus.World, typ string) (int, error) {
	const prefix = "starbus.sched" // scheduleKey's
	keys, err := tx.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	n := 0
	for _, k := range keys {
		id := ScheduleID(strings.TrimPrefix(k, prefix+"."))
		if k != scheduleKey(id) || bus.ValidName(string(id)) != nil {
			continue
		}
		b, err := tx.GetBytes(ctx, k)
		if err != nil {
			return 0, err
		}
		var rec schedule
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, fmt.Errorf("schedule %s: %w", id, err)
		}
		if rec.Type != typ || rec.Due <= now {
			continue
		}
		// The alarm already stored for the old due time finds the
		// record moved on and does nothing (see fire).
		rec.Due = now
		if err := putSchedule(tx, id, rec); err != nil {
			return 0, err
		}
		if err := queueAlarm(tx, w, id, now); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
