package gridworld

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// Config is the shape and pace of a world. Every process serving one world
// must use the same Config: the geometry is not stored.
type Config struct {
	// RegionsX and RegionsY count the regions across and down.
	RegionsX, RegionsY int
	// RegionSize is a region's side, in cells.
	RegionSize int
	// ItemCap bounds the items lying in the world (not carried): the
	// spawner tops every region up to ItemCap / regions.
	ItemCap int
	// SpawnEvery is the period of the spawner task.
	SpawnEvery time.Duration
	// NPCs is the number of wandering non-player characters.
	NPCs int
	// NPCEvery is the period of the task that moves every NPC one step.
	NPCEvery time.Duration
	// Near is the radius, in cells, of what look shows of the players
	// around (a square of side 2·Near+1).
	Near int
	// View is the radius, in cells, of what a player hears of the moves
	// around it (a square of side 2·View+1): its area of interest.
	View int
}

// Default returns the reference world: 4×4 regions of 16×16 cells, up to
// 64 items, 8 NPCs.
func Default() Config {
	return Config{
		RegionsX: 4, RegionsY: 4, RegionSize: 16,
		ItemCap: 64, SpawnEvery: time.Second,
		NPCs: 8, NPCEvery: 500 * time.Millisecond,
		Near: 3, View: 8,
	}
}

// ErrConfig is wrapped by every error of [Config.Validate].
var ErrConfig = errors.New("gridworld: invalid config")

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.RegionsX < 1 || c.RegionsY < 1 || c.RegionsX*c.RegionsY > 1024:
		return fmt.Errorf("%w: RegionsX×RegionsY must be 1 to 1,024", ErrConfig)
	case c.RegionSize < 8 || c.RegionSize > 256:
		return fmt.Errorf("%w: RegionSize %d must be 8 to 256", ErrConfig, c.RegionSize)
	case c.ItemCap < 0:
		return fmt.Errorf("%w: ItemCap %d is negative", ErrConfig, c.ItemCap)
	case c.SpawnEvery <= 0 || c.NPCEvery <= 0:
		return fmt.Errorf("%w: SpawnEvery and NPCEvery must be positive", ErrConfig)
	case c.NPCs < 0 || c.NPCs > 64:
		return fmt.Errorf("%w: NPCs %d must be 0 to 64", ErrConfig, c.NPCs)
	case c.Near < 0 || c.Near > 8:
		return fmt.Errorf("%w: Near %d must be 0 to 8", ErrConfig, c.Near)
	case c.View < 1 || c.View > 64:
		return fmt.Errorf("%w: View %d must be 1 to 64", ErrConfig, c.View)
	}
	return nil
}

// Width and Height are the world's size in cells.
func (c Config) Width() int  { return c.RegionsX * c.RegionSize }
func (c Config) Height() int { return c.RegionsY * c.RegionSize }

// Inside reports whether (x, y) is a cell of the world.
func (c Config) Inside(x, y int) bool { return x >= 0 && y >= 0 && x < c.Width() && y < c.Height() }

// Wall reports whether (x, y) is a wall. Every region has the same room in
// its middle: a square wall from a quarter to three quarters of its side,
// with a doorway in the middle of each side. Walls are geometry, not state.
func (c Config) Wall(x, y int) bool {
	if !c.Inside(x, y) {
		return false
	}
	s := c.RegionSize
	lx, ly := x%s, y%s
	lo, hi := s/4, s*3/4-1
	door := func(v int) bool { return v == s/2-1 || v == s/2 }
	onX := (lx == lo || lx == hi) && ly >= lo && ly <= hi && !door(ly)
	onY := (ly == lo || ly == hi) && lx >= lo && lx <= hi && !door(lx)
	return onX || onY
}

// Open reports whether a player or NPC may stand on (x, y).
func (c Config) Open(x, y int) bool { return c.Inside(x, y) && !c.Wall(x, y) }

// Region returns the name of the region (x, y) belongs to: "r<col>-<row>".
// It is a single subject token, usable as an event region and a channel
// name.
func (c Config) Region(x, y int) string {
	return "r" + strconv.Itoa(x/c.RegionSize) + "-" + strconv.Itoa(y/c.RegionSize)
}

// Regions returns every region's name, row by row.
func (c Config) Regions() []string {
	var rs []string
	for ry := range c.RegionsY {
		for rx := range c.RegionsX {
			rs = append(rs, c.Region(rx*c.RegionSize, ry*c.RegionSize))
		}
	}
	return rs
}

// regionOrigin returns the top-left cell of the region with index i.
func (c Config) regionOrigin(i int) (x, y int) {
	return (i % c.RegionsX) * c.RegionSize, (i / c.RegionsX) * c.RegionSize
}

// start returns the cell a player's placement search starts from when it
// has no last position: spread over the world by a hash of the name, and
// varied by try.
func (c Config) start(name string, try int) (x, y int) {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{byte(try)})
	v := h.Sum64()
	return int(v % uint64(c.Width())), int((v >> 32) % uint64(c.Height()))
}
