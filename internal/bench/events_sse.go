package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sseAttempts bounds the SSE client's connections (the first one, and reconnections after a drop).
const sseAttempts = 20

// sseClient reads GET /admin/events and records, per event of the run, when its frame was parsed.
type sseClient struct {
	url, token string
	hc         *http.Client
	now        func() time.Duration
	saw        func(seq int64, at time.Duration) // seq -1: a frame naming no event of the run

	connected chan struct{} // closed at the first `connected` frame
	done      chan struct{} // closed when run returns
	once      sync.Once

	// Written by run only; read after done.
	reconnects int    // connections after the first one had streamed
	endErr     string // why the last connection ended before the run stopped it
}

// newSSEClient is a client recording its frames in tr.
func newSSEClient(base, token string, tr *tracker) *sseClient {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression: true}}
	return newSSEClientWith(hc, base, token, tr.now, tr.sawSSE)
}

// newSSEClientWith is a client on hc calling saw with each event's sequence number and when its frame
// was parsed (now).
func newSSEClientWith(hc *http.Client, base, token string, now func() time.Duration,
	saw func(seq int64, at time.Duration)) *sseClient {
	return &sseClient{url: base + "/admin/events", token: token, hc: hc, now: now, saw: saw,
		connected: make(chan struct{}), done: make(chan struct{})}
}

// run streams until ctx ends. A stream that ends early (the hub drops a client that falls behind) is
// resumed with Last-Event-ID, at most sseAttempts connections in all; replayed frames count as received
// when they arrive.
func (c *sseClient) run(ctx context.Context) {
	defer close(c.done)
	lastID, streamed := "", false
	for range sseAttempts {
		if streamed {
			c.reconnects++
		}
		ok, err := c.stream(ctx, &lastID)
		streamed = streamed || ok
		if ctx.Err() != nil {
			return
		}
		c.endErr = err.Error()
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stream is one connection; ok reports that it got as far as the `connected` frame.
func (c *sseClient) stream(ctx context.Context, lastID *string) (ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return false, httpError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4<<10), maxBody)
	var event, id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // end of a frame
			at := c.now()
			switch event {
			case "connected":
				ok = true
				c.once.Do(func() { close(c.connected) })
			case eventsType:
				var f struct {
					Payload struct {
						Seq *int64 `json:"seq"`
					} `json:"payload"`
				}
				seq := int64(-1)
				if json.Unmarshal([]byte(data.String()), &f) == nil && f.Payload.Seq != nil {
					seq = *f.Payload.Seq
				}
				c.saw(seq, at)
			}
			if id != "" {
				*lastID = id
			}
			event, id = "", ""
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (heartbeat)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "id":
			id = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	if err := sc.Err(); err != nil {
		return ok, fmt.Errorf("SSE stream: %w", err)
	}
	return ok, errors.New("SSE stream ended by the server")
}
