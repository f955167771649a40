package httpapi

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/receipt"
)

// uploadPath is where a receipt's bytes are PUT; it takes no credentials (the URL is signed) and a body
// up to receipt.MaxSize.
const uploadPath = "/receipts/uploads/"

type uploadURLBody struct {
	Extension string  `json:"extension"`
	MimeType  *string `json:"mimeType"`
}

// receiptUploadURL hands the calling employee a signed, expiring, single-use URL to PUT one receipt to,
// and the receipt URL to file with the expense.
func (s *Server) receiptUploadURL(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	employee, err := employeeContext(id)
	if err != nil {
		return err
	}
	var body uploadURLBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	want := receipt.Types[body.Extension]
	if body.MimeType != nil && !slices.Contains(receipt.ContentTypes, *body.MimeType) {
		return fieldInvalid("mimeType", "Unsupported MIME type '"+*body.MimeType+"'. Allowed: "+
			strings.Join(receipt.ContentTypes, ", "))
	}
	if body.MimeType != nil && *body.MimeType != want {
		return fieldInvalid("mimeType", "MIME type '"+*body.MimeType+"' does not match extension '"+body.Extension+
			"' (expected '"+want+"')")
	}
	receiptID := uuid.New()
	expires := time.Now().Add(s.cfg.ReceiptURLTTL).Unix()
	sig, err := one(s, r, s.q.ReceiptCreateUpload, db.ReceiptCreateUploadParams{OrgID: id.OrgID, EmployeeID: employee,
		ID: receiptID, Extension: body.Extension, ContentType: want, Expires: expires})
	if err != nil {
		return err
	}
	base := s.publicURL(r)
	return respond(w, http.StatusOK, map[string]any{
		"uploadUrl": base + uploadPath + receiptID.String() + "?expires=" + strconv.FormatInt(expires, 10) +
			"&signature=" + sig,
		"receiptUrl": base + "/receipts/" + receiptID.String(),
		"expiresAt":  time.Unix(expires, 0).UTC(),
		"maxBytes":   receipt.MaxSize,
		"mimeType":   want,
	})
}

// uploadReceipt stores the bytes of one receipt PUT to its signed URL: of the declared type by its
// content (not only by its Content-Type header), at most receipt.MaxSize. Nothing is kept of an upload
// that is refused or cut off, and its URL can be used again until it expires. Once the body is read,
// the steps that record the outcome run even if the client has gone (they are bounded by the
// statement timeout); an upload lost with a crashed process leaves its URL unusable, and the client
// asks for another (the dashboard does for every upload).
func (s *Server) uploadReceipt(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return &Error{Status: http.StatusForbidden, Code: "INVALID_UPLOAD_URL", Message: "The upload URL is not valid."}
	}
	step := db.ReceiptUploadStepParams{ID: pathUUID(r, "id"), Expires: expires, Signature: q.Get("signature"),
		FromStatus: "pending", ToStatus: "uploading"}
	rec, err := one(s, r, s.q.ReceiptUploadStep, step)
	if err != nil {
		return err
	}
	stored, err := s.storeReceipt(r, rec)
	detached := r.WithContext(context.WithoutCancel(r.Context()))
	step.FromStatus, step.ToStatus = "uploading", "uploaded"
	if err == nil {
		step.SizeBytes, step.Sha256 = &stored.size, &stored.sha256
		if _, err = one(s, detached, s.q.ReceiptUploadStep, step); err != nil {
			_ = s.receipts.Delete(detached.Context(), rec.StorageKey)
		}
	}
	if err != nil {
		step.ToStatus, step.SizeBytes, step.Sha256 = "pending", nil, nil
		if _, undo := one(s, detached, s.q.ReceiptUploadStep, step); undo != nil {
			s.log.WarnContext(r.Context(), "giving back a refused receipt upload", "receipt", rec.ID, "error", undo.Error())
		}
		return err
	}
	return respond(w, http.StatusOK, map[string]any{
		"receiptUrl": s.publicURL(r) + "/receipts/" + rec.ID.String(), "size": stored.size, "mimeType": rec.ContentType})
}

type storedReceipt struct {
	size   int64
	sha256 string
}

// storeReceipt checks the upload against its receipt and writes it to the store.
func (s *Server) storeReceipt(r *http.Request, rec db.Receipt) (storedReceipt, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != rec.ContentType {
		return storedReceipt{}, &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE",
			Message: "Content-Type must be " + rec.ContentType + ", as declared for this upload"}
	}
	in := &readErr{r: r.Body}
	body, err := receipt.Accept(in, rec.ContentType)
	if err == nil {
		err = s.receipts.Put(r.Context(), rec.StorageKey, body)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, receipt.ErrWrongContent):
		return storedReceipt{}, &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE",
			Message: "The file is not " + rec.ContentType + ": its content says otherwise"}
	case errors.Is(err, receipt.ErrTooLarge), errors.As(err, &tooBig):
		return storedReceipt{}, errTooLarge(receipt.ErrTooLarge.Error())
	case err != nil && in.err != nil: // the client stopped sending, or went away
		return storedReceipt{}, &Error{Status: http.StatusBadRequest, Code: "UPLOAD_INTERRUPTED",
			Message: "The upload ended before the whole file arrived; send it again"}
	case err != nil:
		return storedReceipt{}, err
	}
	return storedReceipt{size: body.Size(), sha256: body.SHA256()}, nil
}

// readErr remembers the error of the request body (an upload cut off), apart from the store's.
type readErr struct {
	r   io.Reader
	err error
}

func (b *readErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

func errTooLarge(msg string) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "PAYLOAD_TOO_LARGE", Message: msg}
}

// getReceipt serves a stored receipt to its employee and the organization's admins.
func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) error {
	rec, err := one(s, r, s.q.ReceiptGet, db.ReceiptGetParams{OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Receipt not found")
	}
	if err != nil {
		return err
	}
	f, err := s.receipts.Open(r.Context(), rec.StorageKey)
	if errors.Is(err, fs.ErrNotExist) {
		return errNotFound("Receipt not found")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", rec.ContentType)
	h.Set("Content-Disposition", `inline; filename="receipt-`+rec.ID.String()+`.`+rec.Extension+`"`)
	h.Set("Cache-Control", "private, max-age=300")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox") // a PDF's scripts run nowhere
	http.ServeContent(w, r, "", f.ModTime(), f)
	return nil
}

// publicURL is how clients reach this server: PUBLIC_URL, or the request's own scheme and host (those a
// trusted proxy forwarded, when well-formed).
func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme, host := "http", "localhost"
	if r.TLS != nil {
		scheme = "https"
	}
	hosts := []string{r.Host}
	if s.fromTrustedProxy(r) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		forwarded, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ",")
		hosts = []string{strings.TrimSpace(forwarded), r.Host}
	}
	for _, h := range hosts {
		if hostPort.MatchString(h) {
			host = h
			break
		}
	}
	return scheme + "://" + host
}

// hostPort is a host name or IP address with an optional port, nothing else.
var hostPort = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
