package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// readyHub is a hub that fans out what the test publishes; it never touches the database.
func readyHub(t *testing.T, perOrg, buffer int) *Hub {
	t.Helper()
	h := NewHub(nil, perOrg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.bufferSize = buffer
	h.ready = true
	return h
}

// rows returns n streamed events of org with positions after..after+n.
func rows(org uuid.UUID, after int64, n int) []db.EventStreamAfterRow {
	out := make([]db.EventStreamAfterRow, n)
	for i := range out {
		id := after + int64(i) + 1
		out[i] = db.EventStreamAfterRow{StreamID: id, OrganizationID: org, StreamEvent: "session.checkin",
			StreamPayload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, id)), CreatedAt: time.Now()}
	}
	return out
}

// receive reads n events from s, failing when the channel is closed or nothing arrives in time.
func receive(t *testing.T, s *Subscriber, n int) []*Event {
	t.Helper()
	out := make([]*Event, 0, n)
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for len(out) < n {
		select {
		case ev, open := <-s.Events():
			if !open {
				t.Fatalf("subscriber closed after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timeout.C:
			t.Fatalf("received %d of %d events", len(out), n)
		}
	}
	return out
}

func TestHub_SlowSubscriberIsDroppedOthersKeepEverything(t *testing.T) {
	t.Parallel()
	const buffer, batch, batches = 8, 5, 10
	h := readyHub(t, 10, buffer)
	org, other := uuid.New(), uuid.New()
	fast, start, err := h.Subscribe(org)
	if err != nil {
		t.Fatal(err)
	}
	slow, _, err := h.Subscribe(org)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, _, err := h.Subscribe(other)
	if err != nil {
		t.Fatal(err)
	}
	if start != 0 {
		t.Fatalf("a fresh hub starts at %d, want 0", start)
	}

	var got []*Event
	for b := range batches {
		h.publish(rows(org, int64(b*batch), batch))
		got = append(got, receive(t, fast, batch)...)
	}

	// The fast subscriber got every event, in order, with the row's fields.
	if len(got) != batch*batches {
		t.Fatalf("fast subscriber got %d events, want %d", len(got), batch*batches)
	}
	for i, ev := range got {
		want := int64(i + 1)
		if ev.StreamID != want || ev.OrgID != org || ev.Name != "session.checkin" ||
			string(ev.Payload) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Fatalf("event %d = %+v, want stream id %d of org %s", i, ev, want, org)
		}
	}

	// The slow one kept what fitted in its buffer, then its channel was closed.
	var kept []int64
	for open := true; open; {
		// Everything was published already: an empty channel that is still open was not dropped.
		select {
		case ev, ok := <-slow.Events():
			if open = ok; ok {
				kept = append(kept, ev.StreamID)
			}
		default:
			t.Fatalf("slow subscriber still subscribed after receiving %v", kept)
		}
	}
	if len(kept) != buffer || kept[0] != 1 || kept[buffer-1] != buffer {
		t.Fatalf("slow subscriber received %v, want 1..%d and then its channel closed", kept, buffer)
	}

	// Nothing of org reached the other organization's subscriber.
	select {
	case ev := <-elsewhere.Events():
		t.Fatalf("subscriber of another organization received %+v", ev)
	default:
	}
	if n := h.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers after the drop, want 2 (fast and the other organization's)", n)
	}
	if pos := h.Position(); pos != batch*batches {
		t.Fatalf("hub position %d, want %d", pos, batch*batches)
	}

	// Unsubscribing a dropped subscriber is harmless, and a new one starts after what was fanned out.
	h.Unsubscribe(slow)
	again, pos, err := h.Subscribe(org)
	if err != nil {
		t.Fatal(err)
	}
	if pos != batch*batches {
		t.Fatalf("new subscriber starts after %d, want %d", pos, batch*batches)
	}
	h.publish(rows(org, pos, 1))
	if ev := receive(t, again, 1)[0]; ev.StreamID != pos+1 {
		t.Fatalf("new subscriber received %d, want %d", ev.StreamID, pos+1)
	}
	if ev := receive(t, fast, 1)[0]; ev.StreamID != pos+1 {
		t.Fatalf("fast subscriber received %d, want %d", ev.StreamID, pos+1)
	}
}

func TestHub_SubscribeEnforcesThePerOrganizationCap(t *testing.T) {
	t.Parallel()
	h := readyHub(t, 2, 4)
	org := uuid.New()
	a, _, err := h.Subscribe(org)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Subscribe(org); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Subscribe(org); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream: %v, want ErrTooManyStreams", err)
	}
	if _, _, err := h.Subscribe(uuid.New()); err != nil {
		t.Fatalf("another organization cannot subscribe: %v", err)
	}
	h.Unsubscribe(a)
	if _, open := <-a.Events(); open {
		t.Fatal("unsubscribed channel still open")
	}
	if _, _, err := h.Subscribe(org); err != nil {
		t.Fatalf("a freed place was not reusable: %v", err)
	}
}

func TestHub_SubscribeBeforeReadyFails(t *testing.T) {
	t.Parallel()
	h := NewHub(nil, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, _, err := h.Subscribe(uuid.New()); err == nil {
		t.Fatal("subscribed to a hub that does not know its position yet")
	}
}

// handed returns a hand-off's rows: n events of org stamped after prevHead, every other one not streamed
// when mixed.
func handed(org uuid.UUID, prevHead int64, n int, mixed bool) []db.EventHandOffRow {
	out := make([]db.EventHandOffRow, n)
	for i := range out {
		id := prevHead + int64(i) + 1
		out[i] = db.EventHandOffRow{StreamID: id, OrganizationID: org, StreamEvent: "session.checkin",
			StreamPayload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, id)), CreatedAt: time.Now(), PrevHead: prevHead}
		if mixed && i%2 == 1 {
			out[i].StreamEvent = ""
		}
	}
	return out
}

func TestHub_HandedOffPublishesOnlyWhatFollowsItsPosition(t *testing.T) {
	t.Parallel()
	h := readyHub(t, 10, 64)
	org := uuid.New()
	s, _, err := h.Subscribe(org)
	if err != nil {
		t.Fatal(err)
	}
	h.publish(rows(org, 0, 3))

	// A hand-off that follows another one this hub has not seen (another process's, or a read still to
	// come) is left to the table.
	if h.HandedOff(handed(org, 5, 2, false)) {
		t.Fatal("published a hand-off following position 5 at position 3")
	}
	if got := h.Position(); got != 3 {
		t.Fatalf("position %d after a refused hand-off, want 3", got)
	}
	// One whose positions leave a gap after the hub's (another hand-off took it, and may yet commit) is
	// left to the table too.
	gap := handed(org, 3, 2, false)
	gap[0].StreamID, gap[1].StreamID = 5, 6
	if h.HandedOff(gap) {
		t.Fatal("published a hand-off at positions 5 and 6 after position 3")
	}
	gap = handed(org, 3, 2, false)
	gap[1].StreamID = 6
	if h.HandedOff(gap) {
		t.Fatal("published a hand-off at positions 4 and 6 after position 3")
	}
	// One that follows the hub's position is published, its events not streamed skipped, and the
	// position is its last stamp.
	if !h.HandedOff(handed(org, 3, 4, true)) {
		t.Fatal("refused a hand-off following the hub's position")
	}
	got := receive(t, s, 5)
	want := []int64{1, 2, 3, 4, 6}
	for i, ev := range got {
		if ev.StreamID != want[i] {
			t.Fatalf("event %d has position %d, want %d (all: %v)", i, ev.StreamID, want[i], got)
		}
	}
	if pos := h.Position(); pos != 7 {
		t.Fatalf("position %d, want 7 (the hand-off's last stamp, streamed or not)", pos)
	}
	select {
	case ev := <-s.Events():
		t.Fatalf("unexpected event %d", ev.StreamID)
	default:
	}
}

func TestHub_HandedOffBeforeTheFirstReadIsLeftToTheTable(t *testing.T) {
	t.Parallel()
	h := NewHub(nil, 10, slog.New(slog.DiscardHandler))
	if h.HandedOff(handed(uuid.New(), 0, 1, false)) {
		t.Fatal("a hub that has not read its head published a hand-off")
	}
}

func TestNotifier_ItsListenersHandOffsWakeOnce(t *testing.T) {
	t.Parallel()
	n := NewNotifier("", slog.New(slog.DiscardHandler))
	var seen int64
	hub := n.SubscribeAfter(func() int64 { return seen })
	worker := n.Subscribe()
	woken := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}

	// The listener of this process hands off; Postgres's notification arrives before the hand-off ends
	// (the listener gives the hub its events, then ends the hand-off).
	n.BeginHandOff()
	n.notified(10)
	if woken(hub) || woken(worker) {
		t.Fatal("a notification during this process's hand-off woke a subscriber before it ended")
	}
	seen = 10
	n.EndHandOff(10)
	if woken(hub) {
		t.Fatal("the hub was woken for a hand-off it had seen")
	}
	if !woken(worker) {
		t.Fatal("the worker was not woken by this process's hand-off")
	}
	// The same when the notification arrives after the hand-off ended: it wakes nobody again.
	n.BeginHandOff()
	seen = 11
	n.EndHandOff(11)
	if !woken(worker) || woken(hub) {
		t.Fatal("a hand-off did not wake the worker alone")
	}
	n.notified(11)
	if woken(hub) || woken(worker) {
		t.Fatal("the notification of a hand-off that ended woke a subscriber")
	}
	// Another process's hand-off wakes both, also when it is held by a hand-off here that then fails.
	n.notified(12)
	if !woken(hub) || !woken(worker) {
		t.Fatal("another process's hand-off did not wake both subscribers")
	}
	n.BeginHandOff()
	n.notified(13)
	n.EndHandOff(0)
	if !woken(hub) || !woken(worker) {
		t.Fatal("a notification held by a failed hand-off did not wake both subscribers")
	}
	// A (re)connection, or a notification without a position, wakes everyone, whatever they have seen.
	seen = 100
	n.BeginHandOff()
	n.notified(unknownPosition)
	if !woken(hub) || !woken(worker) {
		t.Fatal("a reconnection did not wake both subscribers")
	}
}
