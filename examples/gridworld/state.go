package gridworld

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// The world's state, one small record per thing that changes on its own,
// so that tasks touching different things do not conflict:
//
//	gw.meta                      the world exists (written once)
//	gw.spawned                   Items ever spawned, by kind (the spawner's)
//	gw.players.<shard>           names of registered players, in 16 shards
//	gw.sess.<session>            name of the player a session plays
//	gw.online.<name>             session of an online player
//	gw.pos.<name>                where a player is (or was, when offline)
//	gw.inv.<name>                what a player carries
//	gw.cell.<x>.<y>              who occupies a cell (absent: nobody)
//	gw.region.<r>.members        online players of a region: name → session
//	gw.region.<r>.items          items lying in a region: "x,y" → kinds
//	gw.offer.<to>.<from>         an offer waiting for to's accept
//	gw.npc.<i>                   where NPC i is
//
// A move touches its player's pos and two cells; only a move that crosses
// into another region writes the two regions' members. Picking up and
// dropping write the region's items. A trade writes two inventories.
const (
	keyMeta    = "gw.meta"
	keySpawned = "gw.spawned"
	shards     = 16
)

func keyPlayers(shard int) string     { return "gw.players." + strconv.Itoa(shard) }
func keySess(session string) string   { return "gw.sess." + session }
func keyOnline(name string) string    { return "gw.online." + name }
func keyPos(name string) string       { return "gw.pos." + name }
func keyInv(name string) string       { return "gw.inv." + name }
func keyCell(x, y int) string         { return cellPrefix + "." + strconv.Itoa(x) + "." + strconv.Itoa(y) }
func keyMembers(region string) string { return "gw.region." + region + ".members" }
func keyItems(region string) string   { return "gw.region." + region + ".items" }
func keyOffer(to, from string) string { return "gw.offer." + to + "." + from }
func keyNPC(i int) string             { return "gw.npc." + strconv.Itoa(i) }
func npcName(i int) string            { return "npc-" + strconv.Itoa(i) }
func pileKey(x, y int) string         { return strconv.Itoa(x) + "," + strconv.Itoa(y) }
func shardOf(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % shards)
}

// pos is where a player stands; Online is false after logout (X, Y are
// then where it stood last).
type pos struct {
	X      int  `json:"x"`
	Y      int  `json:"y"`
	Online bool `json:"on,omitempty"`
}

// cell is a cell's occupant: a player or NPC (index + 1).
type cell struct {
	P   string `json:"p,omitempty"`
	NPC int    `json:"npc,omitempty"`
}

// offer is a standing offer: From gives Give for Want.
type offer struct {
	Give Items `json:"give,omitempty"`
	Want Items `json:"want,omitempty"`
}

// parsePile reads a pile key "x,y".
func parsePile(k string) (x, y int, ok bool) {
	a, b, ok := strings.Cut(k, ",")
	if !ok {
		return 0, 0, false
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, err1 == nil && err2 == nil
}

// cellPrefix is the prefix of the cells' keys.
const cellPrefix = "gw.cell"

// parseCell returns the cell of a key made by keyCell.
func parseCell(key string) (x, y int, ok bool) {
	rest, ok := strings.CutPrefix(key, cellPrefix+".")
	if !ok {
		return 0, 0, false
	}
	xs, ys, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, 0, false
	}
	x, err1 := strconv.Atoi(xs)
	y, err2 := strconv.Atoi(ys)
	return x, y, err1 == nil && err2 == nil
}
