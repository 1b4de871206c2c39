package partition_test

import (
	"fmt"
	"time"

	"github.com/starbus/starbus/handlers/internal/partition"
)

// A member's plan when a second member has joined: of the four partitions
// it holds, c keeps 1 and 3 and hands 0 and 2 to b, which sorts first and
// so also becomes the commit leader.
func ExamplePlan() {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	board := partition.NewBoard(4)
	board.Heartbeat("c", now, now, true)
	board.Heartbeat("b", now, now, true) // b joins
	var held []partition.Local
	for p := range 4 {
		board.Learn(p, partition.Record{Owner: "c", Epoch: 1, Seq: uint64(10 + p)})
		held = append(held, partition.Local{Held: &partition.Held{Epoch: 1, RecSeq: uint64(10 + p)}})
	}
	board.Synced = true
	v := partition.View{Board: board, Self: "c", Now: now, Lease: 3 * time.Second, Leader: "c", Parts: held}
	for _, a := range partition.Plan(v) {
		fmt.Println(a)
	}
	// Output:
	// lead b
	// release 0 (c e1 @10)
	// release 2 (c e1 @12)
}
