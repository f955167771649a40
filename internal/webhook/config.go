package webhook

import (
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/config"
)

const (
	// maxStoredBody is how much of a receiver's answer the delivery log keeps.
	maxStoredBody = 4096
	// maxRetryAfter caps a receiver's Retry-After, so a bogus value cannot park a delivery for years.
	maxRetryAfter = 24 * time.Hour
	// maxCircuitOpen caps how long a failing endpoint's circuit stays open between probes.
	maxCircuitOpen = 24 * time.Hour
	// userAgent is the original API's.
	userAgent = "FieldTrack-Webhooks/1.0"
	// testEvent deliveries are sent whatever the webhook's state (an admin asked for them).
	testEvent = "webhook.test"
)

// Config tunes delivery. FromConfig derives it from the server's configuration; tests build it directly.
type Config struct {
	Concurrency      int           // attempts in flight at once, per process
	Timeout          time.Duration // one attempt, from dialling to the end of the (truncated) answer
	MaxAttempts      int           // after this many failed attempts a delivery is dead-lettered (status failed)
	BackoffBase      time.Duration // ceiling of the delay after the first failed attempt; doubles per attempt
	BackoffMax       time.Duration // ceiling of any delay
	PollInterval     time.Duration // how long an idle worker waits before looking for due deliveries again
	Lease            time.Duration // how long a claim keeps other workers off a delivery; must exceed Timeout
	CircuitThreshold int           // consecutive failed attempts that open a webhook's circuit
	CircuitOpen      time.Duration // first open period; doubles per failed probe, up to maxCircuitOpen

	AllowPrivateTargets bool // deliver to loopback, private and link-local addresses (tests, development)
	HTTPSOnly           bool // refuse http:// targets (production)

	// OrganizationID, when set, limits the worker to that organization's deliveries, so tests can run
	// workers with different settings side by side on one database. Zero in production.
	OrganizationID uuid.UUID
}

// leaseMargin is how much longer than an attempt's timeout a claim lasts: long enough for the attempt and
// its bookkeeping, short enough that a crashed worker's claims come back soon.
const leaseMargin = 45 * time.Second

// FromConfig is the worker configuration of a server.
func FromConfig(c config.Config) Config {
	return Config{
		Concurrency:         c.WebhookConcurrency,
		Timeout:             c.WebhookTimeout,
		MaxAttempts:         c.WebhookMaxAttempts,
		BackoffBase:         c.WebhookBackoffBase,
		BackoffMax:          c.WebhookBackoffMax,
		PollInterval:        c.WebhookPollInterval,
		Lease:               c.WebhookTimeout + leaseMargin,
		CircuitThreshold:    c.WebhookCircuitThreshold,
		CircuitOpen:         c.WebhookCircuitOpen,
		AllowPrivateTargets: c.WebhookAllowPrivateTargets,
		HTTPSOnly:           c.Production(),
	}
}

// withDefaults fills zero fields with the server's defaults (those of config.Default), so a test only
// states what it cares about.
func (c Config) withDefaults() Config {
	d := FromConfig(config.Default())
	pick := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.CircuitThreshold <= 0 {
		c.CircuitThreshold = d.CircuitThreshold
	}
	pick(&c.Timeout, d.Timeout)
	pick(&c.BackoffBase, d.BackoffBase)
	pick(&c.BackoffMax, d.BackoffMax)
	pick(&c.PollInterval, d.PollInterval)
	pick(&c.Lease, c.Timeout+leaseMargin)
	pick(&c.CircuitOpen, d.CircuitOpen)
	return c
}
