package supervisor

import (
	"context"
	"sync"
	"time"
)

// defaultFetchShare is how long after a fetch started a claim may still take
// its result instead of fetching again: a burst of claims shares one fetch.
const defaultFetchShare = 500 * time.Millisecond

// fetchGroup coalesces the fetches of claims that land close together. A
// claim joins the fetch that is waiting to start, or one that started at
// most share before it (so the refs it gets are as new as its own fetch's
// would be, give or take share); otherwise it waits for the next fetch, which
// starts when the running one ends. A failed fetch is never shared after the
// fact.
type fetchGroup struct {
	share time.Duration
	fetch func(ctx context.Context) error

	mu   sync.Mutex
	cur  *fetchCall // the latest fetch started
	next *fetchCall // the fetch waiting for cur to end
}

type fetchCall struct {
	started time.Time
	done    chan struct{}
	err     error
}

func (c *fetchCall) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// do waits for a fetch that serves a claim made now. The fetch itself runs
// on its own context (ctx without its cancellation, bounded by timeout), as
// other claims may be waiting for it; ctx only ends this caller's wait.
func (g *fetchGroup) do(ctx context.Context, timeout time.Duration) error {
	now := time.Now()
	g.mu.Lock()
	var c *fetchCall
	switch cur := g.cur; {
	case g.next != nil:
		c = g.next
	case cur != nil && now.Sub(cur.started) <= g.share && (!cur.finished() || cur.err == nil):
		c = cur
	case cur != nil && !cur.finished():
		c = &fetchCall{done: make(chan struct{})}
		g.next = c
		go func() {
			<-cur.done
			g.start(ctx, c, timeout)
		}()
	default:
		c = &fetchCall{done: make(chan struct{})}
		g.cur, c.started = c, now
		go g.run(ctx, c, timeout)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start makes the waiting fetch c the current one and runs it.
func (g *fetchGroup) start(ctx context.Context, c *fetchCall, timeout time.Duration) {
	g.mu.Lock()
	g.cur, g.next, c.started = c, nil, time.Now()
	g.mu.Unlock()
	g.run(ctx, c, timeout)
}

func (g *fetchGroup) run(ctx context.Context, c *fetchCall, timeout time.Duration) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	c.err = g.fetch(fctx)
	close(c.done)
}
