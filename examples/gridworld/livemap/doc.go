// Package livemap serves a live map of a gridworld (package gridworld) over
// HTTP: a self-contained page (embedded, no external resources) that draws
// the grid, its walls, the players, NPCs and items, and the platform's
// counters (tasks/s, conflicts, retries, task latency, commits, sessions:
// with Map.Metrics set, the process's Prometheus series, the numbers its
// /metrics serves) and, with Map.Leaders set, who carries the most of each
// kind of item (from a local index, gridworld.Leaderboard), polling a JSON
// endpoint.
//
// It also serves a page to play the world in the browser, /play: a player
// logs in and walks, chats and trades with the keyboard, seeing its
// region, through the edge's WebSocket (the same origin's /ws, which the
// HTTP server that mounts the map must route to edge.Server's
// WebSocketHandler, as `starbus dev` does; ?ws= names another URL) with
// the TypeScript client of clients/js, whose browser bundle is embedded
// beside the page.
//
// Routes:
//
//	GET /                    the live map
//	GET /play                the play page
//	GET /starbus-client.js   the client's browser bundle (an ES module)
//	GET /api/world           the world's geometry and walls (static)
//	GET /api/state           who and what is where, and the counters
//	GET /api/check           the world's invariant check (gridworld.Report)
//
// The handler starts no goroutines; each request runs in its caller's.
package livemap
