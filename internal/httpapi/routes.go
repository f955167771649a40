package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// eventsPath is the SSE stream; it has no request deadline and also takes its token in the query.
const eventsPath = "/admin/events"

// exportPath is the CSV export; it has no request deadline either (each batch has its statement timeout).
const exportPath = "/admin/expenses/export"

// Handler returns the whole route table. Every route must exist in openapi.yaml with the same method and
// pattern; New's caller gets a panic at start-up otherwise.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(requestID, s.accessLog, s.recoverer, securityHeaders, s.cors, s.limits)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, errNotFound("Route "+req.Method+":"+req.URL.Path+" not found"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, errNotFound("Route "+req.Method+":"+req.URL.Path+" not found"))
	})

	// health
	s.handle(r, "GET", "/", public, s.root)
	s.handle(r, "GET", "/health", public, s.health)
	s.handle(r, "GET", "/ready", public, s.ready)
	s.handle(r, "GET", "/openapi.json", public, s.openapi)
	s.handle(r, "GET", "/docs", public, s.docsPage)
	s.handle(r, "GET", "/docs/{asset}", public, s.docsAsset)
	s.handle(r, "GET", "/metrics", public, s.metricsEndpoint)

	// attendance
	s.handle(r, "POST", "/attendance/check-in", employeeOnly, s.checkIn)
	s.handle(r, "POST", "/attendance/check-out", employeeOnly, s.checkOut)
	s.handle(r, "GET", "/attendance/my-sessions", anyUser, s.mySessions)
	s.handle(r, "GET", "/attendance/org-sessions", adminOnly, s.orgSessionsGone)
	s.handle(r, "POST", "/attendance/{sessionId}/recalculate", anyUser, s.recalculate)
	s.handle(r, "GET", "/attendance/{sessionId}/distance-report", anyUser, s.distanceReport("sessionId"))

	// locations
	s.handle(r, "POST", "/locations", employeeOnly, s.recordLocation)
	s.handle(r, "POST", "/locations/batch", employeeOnly, s.recordLocations)
	s.handle(r, "GET", "/locations/my-route", employeeOnly, s.myRoute)

	// built-in identity (Supabase Auth's protocol under /auth/v1), profiles and the employee's dashboard
	s.handle(r, "POST", "/auth/login", public, s.login)
	s.handle(r, "POST", "/auth/v1/token", public, s.gotrueToken)
	s.handle(r, "GET", "/auth/v1/user", public, s.gotrueUser) // bearer token checked by the handler
	s.handle(r, "POST", "/auth/v1/logout", public, s.gotrueLogout)
	s.handle(r, "GET", "/auth/v1/.well-known/jwks.json", public, s.jwks)
	s.handle(r, "GET", "/auth/me", anyUser, s.authMe)
	s.handle(r, "GET", "/profile/me", anyUser, s.profileMe)
	s.handle(r, "GET", "/dashboard/my-summary", anyUser, s.mySummary)

	// analytics (from the snapshots)
	s.handle(r, "GET", "/admin/dashboard", adminOnly, s.adminDashboard)
	s.handle(r, "GET", "/admin/org-summary", adminOnly, s.orgSummary)
	s.handle(r, "GET", "/admin/user-summary", adminOnly, s.userSummary)
	s.handle(r, "GET", "/admin/top-performers", adminOnly, s.topPerformers)
	s.handle(r, "GET", "/admin/session-trend", adminOnly, s.sessionTrend)
	s.handle(r, "GET", "/admin/leaderboard", adminOnly, s.leaderboard)
	s.handle(r, "GET", "/leaderboard", anyUser, s.leaderboard)
	s.handle(r, "GET", "/internal/snapshot-health", adminOnly, s.snapshotHealth)

	// expenses and receipts (filing needs an employee: the handlers check it)
	s.handle(r, "POST", "/expenses/receipt-upload-url", employeeOnly, s.receiptUploadURL)
	s.handle(r, "POST", "/expenses", anyUser, s.createExpense)
	s.handle(r, "GET", "/expenses/my", anyUser, s.myExpenses)
	s.handle(r, "PUT", uploadPath+"{id}", public, s.uploadReceipt) // the signed URL is the credential
	s.handle(r, "GET", "/receipts/{id}", anyUser, s.getReceipt)
	s.handle(r, "GET", "/admin/expenses", adminOnly, s.orgExpenses)
	s.handle(r, "GET", "/admin/expenses/summary", adminOnly, s.expenseSummary)
	s.handle(r, "GET", exportPath, adminOnly, s.exportExpenses)
	s.handle(r, "PATCH", "/admin/expenses/{id}", adminOnly, s.reviewExpense)

	// admin
	s.handle(r, "GET", eventsPath, adminOnly, s.adminEvents)
	s.handle(r, "GET", "/admin/queues", adminOnly, s.queues)
	s.handle(r, "GET", "/admin/system-health", adminOnly, s.systemHealth)
	s.handle(r, "GET", "/admin/retry-intents", adminOnly, s.retryIntents)
	s.handle(r, "GET", "/internal/queues/status", adminOnly, s.queueStatus)
	s.handle(r, "GET", "/internal/metrics", adminOnly, s.internalMetrics)
	s.handle(r, "GET", "/internal/ready-deep", adminOnly, s.readyDeep)
	s.handle(r, "GET", "/admin/sessions", adminOnly, s.adminSessions)
	s.handle(r, "GET", "/admin/sessions/{id}/locations", adminOnly, s.sessionLocations)
	s.handle(r, "GET", "/admin/sessions/{id}/distance-report", adminOnly, s.distanceReport("id"))
	s.handle(r, "GET", "/admin/monitoring/map", adminOnly, s.monitoringMap)
	s.handle(r, "POST", "/admin/force-checkout", adminOnly, s.forceCheckOut)
	s.handle(r, "POST", "/admin/queues/replay-distance-dlq", adminOnly, s.replayDistance)
	s.handle(r, "POST", "/admin/start-monitoring", adminUser, s.startMonitoring)
	s.handle(r, "POST", "/admin/stop-monitoring", adminUser, s.stopMonitoring)
	s.handle(r, "GET", "/admin/monitoring-history", adminOnly, s.monitoringHistory)
	s.handle(r, "GET", "/admin/tracking-settings", adminOnly, s.trackingSettings)
	s.handle(r, "PATCH", "/admin/tracking-settings", adminOnly, s.updateTrackingSettings)

	// employees
	s.handle(r, "GET", "/admin/employees", adminOnly, s.listEmployees)
	s.handle(r, "POST", "/admin/employees", adminOnly, s.createEmployee)
	s.handle(r, "GET", "/admin/employees/{id}", adminOnly, s.getEmployee)
	s.handle(r, "PATCH", "/admin/employees/{id}", adminOnly, s.updateEmployee)
	s.handle(r, "PATCH", "/admin/employees/{id}/status", adminOnly, s.setEmployeeStatus)
	s.handle(r, "GET", "/admin/employees/{id}/profile", adminOnly, s.employeeProfile)
	s.handle(r, "GET", "/admin/search", adminOnly, s.search)

	// webhooks (the /webhooks… and /admin/webhooks/logs… paths are the original's hidden aliases)
	for _, prefix := range []string{"/admin/webhooks", "/webhooks"} {
		s.handle(r, "GET", prefix, adminOnly, s.listWebhooks)
		s.handle(r, "POST", prefix, adminOnly, s.createWebhook)
		s.handle(r, "PATCH", prefix+"/{id}", adminOnly, s.updateWebhook)
		s.handle(r, "DELETE", prefix+"/{id}", adminOnly, s.deleteWebhook)
		s.handle(r, "POST", prefix+"/{id}/test", adminOnly, s.testWebhook)
	}
	for _, logs := range []string{"/admin/webhook-deliveries", "/admin/webhooks/logs", "/webhooks/logs"} {
		s.handle(r, "GET", logs, adminOnly, s.listDeliveries)
		s.handle(r, "POST", logs+"/{id}/retry", adminOnly, s.retryDelivery)
	}
	s.handle(r, "GET", "/admin/webhook-dlq", adminOnly, s.listDeadLetters)
	s.handle(r, "POST", "/admin/webhook-dlq/{id}/retry", adminOnly, s.retryDeadLetter)

	// API keys (a user's JWT only: keys never manage keys) and the audit log
	s.handle(r, "GET", "/admin/api-keys", adminUser, s.listAPIKeys)
	s.handle(r, "POST", "/admin/api-keys", adminUser, s.createAPIKey)
	s.handle(r, "PATCH", "/admin/api-keys/{id}", adminUser, s.updateAPIKey)
	s.handle(r, "DELETE", "/admin/api-keys/{id}", adminUser, s.deleteAPIKey)
	s.handle(r, "GET", "/admin/audit-log", adminOnly, s.auditLog)
	return r
}
