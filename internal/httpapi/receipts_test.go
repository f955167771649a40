package httpapi

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/receipt"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// A small real image of each kind, and the start of a real PDF.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(3, 3, color.RGBA{R: 200, A: 255})
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var pdfBytes = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

// uploadTarget asks for an upload URL as the dashboard does and returns it and the receipt URL.
func uploadTarget(t *testing.T, h *harness, tok, extension string) (uploadURL, receiptURL string) {
	t.Helper()
	r := h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": extension})
	expect(t, r, http.StatusOK)
	d := r.data()
	uploadURL, _ = d["uploadUrl"].(string)
	receiptURL, _ = d["receiptUrl"].(string)
	if !strings.HasPrefix(uploadURL, h.url+uploadPath) || !strings.HasPrefix(receiptURL, h.url+"/receipts/") {
		t.Fatalf("upload URL answer %s", r.Raw)
	}
	return uploadURL, receiptURL
}

// put sends body to a signed upload URL the way a browser does: no credentials, the file's Content-Type.
func put(t *testing.T, h *harness, uploadURL, contentType string, body []byte) response {
	t.Helper()
	u, err := url.Parse(uploadURL)
	if err != nil {
		t.Fatal(err)
	}
	return h.call("PUT", u.RequestURI(), "", body, "Content-Type", contentType)
}

// storedFiles lists the files in the harness's receipt store.
func storedFiles(t *testing.T, h *harness) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(h.server.cfg.ReceiptsDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestReceipts_UploadFileAndFetchEndToEnd(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp, colleague := testfactory.NewEmployee(t, org, "Owner"), testfactory.NewEmployee(t, org, "Colleague")
	tok := testfactory.EmployeeToken(t, emp)
	for _, c := range []struct {
		extension, contentType string
		body                   []byte
	}{{"png", "image/png", pngBytes(t)}, {"jpg", "image/jpeg", jpegBytes(t)}, {"pdf", "application/pdf", pdfBytes}} {
		uploadURL, receiptURL := uploadTarget(t, h, tok, c.extension)
		up := put(t, h, uploadURL, c.contentType, c.body)
		expect(t, up, http.StatusOK)
		if up.data()["receiptUrl"] != receiptURL || up.data()["size"] != float64(len(c.body)) {
			t.Fatalf("upload answered %s", up.Raw)
		}
		// The dashboard files the receipt URL with the expense, and an extension field it has no use for.
		filed := h.call("POST", "/expenses", tok, map[string]any{"amount": 8.4, "description": "Receipt " + c.extension,
			"receipt_url": receiptURL, "extension": c.extension})
		expect(t, filed, http.StatusCreated)
		if filed.data()["receipt_url"] != receiptURL {
			t.Fatalf("filed %s", filed.Raw)
		}
		path := strings.TrimPrefix(receiptURL, h.url)
		for who, tok := range map[string]string{"the admin": testfactory.AdminToken(t, org), "the owner": tok} {
			got := h.call("GET", path, tok, nil)
			expect(t, got, http.StatusOK)
			if !bytes.Equal(got.Raw, c.body) || got.Header.Get("Content-Type") != c.contentType {
				t.Fatalf("%s fetched %d bytes of %s, want the %d uploaded", who, len(got.Raw), got.Header.Get("Content-Type"), len(c.body))
			}
		}
		expectError(t, h.call("GET", path, testfactory.EmployeeToken(t, colleague), nil), http.StatusNotFound, "NOT_FOUND", "Receipt not found")
		expectError(t, h.call("GET", path, testfactory.AdminToken(t, testfactory.NewOrg(t)), nil), http.StatusNotFound, "NOT_FOUND", "Receipt not found")
		expectError(t, h.call("GET", path, "", nil), http.StatusUnauthorized, "UNAUTHORIZED", "")
		// Filed once: a second expense cannot take the same receipt.
		expectError(t, h.call("POST", "/expenses", tok, map[string]any{"amount": 1, "description": "Again",
			"receipt_url": receiptURL}), http.StatusBadRequest, "VALIDATION_ERROR", "receipt_url does not name a receipt you uploaded")
	}
	expectError(t, h.call("GET", "/receipts/not-a-uuid", tok, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")

	// A receipt's path on another host is another site's URL: stored as given (https only), nothing attached.
	_, unfiled := uploadTarget(t, h, tok, "png")
	elsewhere := "https://elsewhere.example" + strings.TrimPrefix(unfiled, h.url)
	r := h.call("POST", "/expenses", tok, map[string]any{"amount": 2, "description": "Foreign link", "receipt_url": elsewhere})
	expect(t, r, http.StatusCreated)
	if r.data()["receipt_url"] != elsewhere {
		t.Fatalf("stored %v, want the URL as given", r.data()["receipt_url"])
	}
	var attached int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT count(*) FROM receipts WHERE id = $1::uuid AND status = 'attached'`,
		strings.TrimPrefix(unfiled, h.url+"/receipts/")).Scan(&attached); err != nil || attached != 0 {
		t.Fatalf("a foreign URL attached the receipt (%d, %v)", attached, err)
	}
}

func TestReceipts_RefusedUploadsStoreNothingAndLeaveTheURLUsable(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Uploader")
	tok := testfactory.EmployeeToken(t, emp)
	uploadURL, receiptURL := uploadTarget(t, h, tok, "png")

	// The header is not the declared type.
	expectError(t, put(t, h, uploadURL, "image/jpeg", jpegBytes(t)), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "")
	// The header is right and the content is not: a PDF sent as a PNG.
	expectError(t, put(t, h, uploadURL, "image/png", pdfBytes), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "")
	expectError(t, put(t, h, uploadURL, "image/png", nil), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "")
	// Over 10 MB, declared in Content-Length.
	big := append(pngBytes(t), make([]byte, receipt.MaxSize)...)
	expectError(t, put(t, h, uploadURL, "image/png", big), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "")
	// Over 10 MB, streamed without a length: refused when the 10 MB are passed.
	req, err := http.NewRequest("PUT", uploadURL, io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "image/png")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if req.ContentLength != 0 || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked upload over 10 MB (length %d) answered %d, want 413", req.ContentLength, res.StatusCode)
	}
	if files := storedFiles(t, h); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}
	// A receipt that was refused is not one to file.
	expectError(t, h.call("POST", "/expenses", tok, map[string]any{"amount": 1, "description": "Nothing uploaded",
		"receipt_url": receiptURL}), http.StatusBadRequest, "VALIDATION_ERROR", "receipt_url does not name a receipt you uploaded")

	// The URL still takes the right file, once.
	expect(t, put(t, h, uploadURL, "image/png", pngBytes(t)), http.StatusOK)
	expectError(t, put(t, h, uploadURL, "image/png", pngBytes(t)), http.StatusConflict, "UPLOAD_URL_USED", "The upload URL has already been used.")
	if files := storedFiles(t, h); len(files) != 1 {
		t.Fatalf("stored %v, want the one upload", files)
	}
}

func TestReceipts_ForgedOrExpiredURLsAreRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ReceiptURLTTL = -time.Second // every URL handed out has already expired
	expired := setupWith(t, cfg, testfactory.Pool(t))
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Forger")
	tok := testfactory.EmployeeToken(t, emp)

	late, _ := uploadTarget(t, expired, tok, "png")
	expectError(t, put(t, expired, late, "image/png", pngBytes(t)), http.StatusGone, "UPLOAD_URL_EXPIRED", "The upload URL has expired.")

	uploadURL, _ := uploadTarget(t, h, tok, "png")
	u, _ := url.Parse(uploadURL)
	q := u.Query()
	for name, change := range map[string]func(url.Values){
		"another signature":        func(v url.Values) { v.Set("signature", strings.Repeat("0", 64)) },
		"an empty signature":       func(v url.Values) { v.Set("signature", "") },
		"a later expiry":           func(v url.Values) { v.Set("expires", "99999999999") },
		"an expiry that is a word": func(v url.Values) { v.Set("expires", "soon") },
	} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		change(v)
		t.Run(name, func(t *testing.T) {
			expectError(t, h.call("PUT", u.Path+"?"+v.Encode(), "", pngBytes(t), "Content-Type", "image/png"),
				http.StatusForbidden, "INVALID_UPLOAD_URL", "The upload URL is not valid.")
		})
	}
	v := u.Query()
	v.Del("signature")
	expectError(t, h.call("PUT", u.Path+"?"+v.Encode(), "", pngBytes(t), "Content-Type", "image/png"),
		http.StatusBadRequest, "VALIDATION_ERROR", "querystring/signature value is required but missing")
	other, _ := uploadTarget(t, h, tok, "png")
	o, _ := url.Parse(other)
	expectError(t, h.call("PUT", o.Path+"?"+u.RawQuery, "", pngBytes(t), "Content-Type", "image/png"),
		http.StatusForbidden, "INVALID_UPLOAD_URL", "The upload URL is not valid.") // one receipt's signature on another
	if files := append(storedFiles(t, h), storedFiles(t, expired)...); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}
}

func TestReceiptUploadURL_ValidatesTheTypeAndNeedsAnEmployee(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Asker"))
	r := h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": "jpeg", "mimeType": "image/jpeg"})
	expect(t, r, http.StatusOK)
	if r.data()["mimeType"] != "image/jpeg" || r.data()["maxBytes"] != float64(receipt.MaxSize) {
		t.Fatalf("answer %s", r.Raw)
	}
	expectError(t, h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": "exe"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": "png", "mimeType": "image/gif"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "Unsupported MIME type 'image/gif'. Allowed: image/jpeg, image/png, image/webp, application/pdf")
	expectError(t, h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": "png", "mimeType": "image/jpeg"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "MIME type 'image/jpeg' does not match extension 'png' (expected 'image/png')")
	expectError(t, h.call("POST", "/expenses/receipt-upload-url", testfactory.AdminToken(t, org), map[string]any{"extension": "png"}),
		http.StatusForbidden, "FORBIDDEN", "")
}

func TestReceiptUpload_AnswersTheBrowsersPreflight(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.CORSOrigins = []string{"https://dashboard.example.com"}
	h := setupWith(t, cfg, testfactory.Pool(t))
	uploadURL, _ := uploadTarget(t, h, testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "Browser")), "png")
	req, _ := http.NewRequest("OPTIONS", uploadURL, nil)
	req.Header.Set("Origin", "https://dashboard.example.com")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://dashboard.example.com" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "content-type") {
		t.Fatalf("preflight %d %v", res.StatusCode, res.Header)
	}
}

func TestReceiptJanitor_RemovesExpiredUploadsNeverFiledAndKeepsFiledOnes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	pool := testfactory.Pool(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Forgetful")
	tok := testfactory.EmployeeToken(t, emp)
	forgotten, forgottenURL := uploadTarget(t, h, tok, "png")
	expect(t, put(t, h, forgotten, "image/png", pngBytes(t)), http.StatusOK)
	filed, filedURL := uploadTarget(t, h, tok, "png")
	expect(t, put(t, h, filed, "image/png", pngBytes(t)), http.StatusOK)
	filing := h.call("POST", "/expenses", tok, map[string]any{"amount": 3, "description": "Filed", "receipt_url": filedURL})
	expect(t, filing, http.StatusCreated)
	_, never := uploadTarget(t, h, tok, "pdf") // asked for, never uploaded
	if n := len(storedFiles(t, h)); n != 2 {
		t.Fatalf("%d files stored, want 2", n)
	}
	// Their URLs expire.
	if _, err := pool.Exec(t.Context(), `UPDATE receipts SET expires_at = now() - interval '1 second' WHERE employee_id = $1`, emp.ID); err != nil {
		t.Fatal(err)
	}
	j := receipt.NewJanitor(pool, h.server.Receipts(), time.Minute, h.server.log)
	removed := 0
	for { // the janitor sweeps every receipt of the database; other tests' may be among them
		n, err := j.Sweep(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		removed += n
	}
	if removed < 2 {
		t.Fatalf("removed %d receipts, want at least the 2 never filed", removed)
	}
	files := storedFiles(t, h)
	if len(files) != 1 || !strings.HasSuffix(files[0], strings.TrimPrefix(filedURL, h.url+"/receipts/")+".png") {
		t.Fatalf("left %v, want only the filed receipt", files)
	}
	var left []string
	rows, err := pool.Query(t.Context(), `SELECT id::text FROM receipts WHERE employee_id = $1`, emp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if rows.Err() != nil || len(left) != 1 || !strings.HasSuffix(filedURL, left[0]) {
		t.Fatalf("receipt rows left %v (%v), want the filed one", left, rows.Err())
	}
	for _, u := range []string{forgottenURL, never} {
		expectError(t, h.call("GET", strings.TrimPrefix(u, h.url), tok, nil), http.StatusNotFound, "NOT_FOUND", "Receipt not found")
	}
	// A filed receipt goes with its expense (here deleted by a DBA; the same holds for its employee or
	// organization): the janitor removes the file the delete left behind.
	if _, err := pool.Exec(t.Context(), `DELETE FROM expenses WHERE id = $1`, filing.data()["id"]); err != nil {
		t.Fatal(err)
	}
	testfactory.Eventually(t, 10*time.Second, "the deleted expense's receipt file to be removed", func() (bool, error) {
		_, err := j.Sweep(t.Context())
		return len(storedFiles(t, h)) == 0, err
	})
}

func TestReceipts_ASlowUploadSucceedsAndAStalledOneLeavesTheURLUsable(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RequestTimeout = 300 * time.Millisecond // both the request deadline and the wait for the next bytes
	h := setupWith(t, cfg, testfactory.Pool(t))
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "Slow link"))
	file := append(pngBytes(t), make([]byte, 4096)...)

	// putPaced sends file in eight parts, pause apart, then stalls (never ends the body) when stall is set.
	putPaced := func(uploadURL string, pause time.Duration, stall bool) *http.Response {
		pr, pw := io.Pipe()
		go func() {
			step := len(file)/8 + 1
			for i := 0; i < len(file); i += step {
				if _, err := pw.Write(file[i:min(i+step, len(file))]); err != nil {
					return
				}
				if stall && i > 0 {
					return // the phone lost its signal: the body never ends
				}
				time.Sleep(pause) // the pace of a slow link, not a synchronization
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", uploadURL, pr)
		req.Header.Set("Content-Type", "image/png")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		pw.CloseWithError(io.ErrClosedPipe)
		return res
	}
	slow, _ := uploadTarget(t, h, tok, "png")
	if res := putPaced(slow, 100*time.Millisecond, false); res.StatusCode != http.StatusOK {
		t.Fatalf("an upload of 0.8 s, each part within the timeout, answered %d", res.StatusCode)
	}
	stalled, _ := uploadTarget(t, h, tok, "png")
	if res := putPaced(stalled, 0, true); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a stalled upload answered %d, want 400", res.StatusCode)
	}
	expect(t, put(t, h, stalled, "image/png", file), http.StatusOK) // the same URL, used again
	if n := len(storedFiles(t, h)); n != 2 {
		t.Fatalf("%d files stored, want the two complete uploads", n)
	}
}
