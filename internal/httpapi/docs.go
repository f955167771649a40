package httpapi

import (
	"embed"
	"net/http"
	"path"

	"github.com/go-chi/chi/v5"
)

// docsFiles is the browsable API documentation: Swagger UI (vendored by `make docs-ui`) on /openapi.json.
//
//go:embed docs/index.html docs/init.js docs/swagger-ui-bundle.js docs/swagger-ui.css docs/favicon-32x32.png
var docsFiles embed.FS

var docsTypes = map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8", ".png": "image/png"}

// docsPage is GET /docs.
func (s *Server) docsPage(w http.ResponseWriter, r *http.Request) error {
	return serveDoc(w, "index.html", "no-cache")
}

// docsAsset is GET /docs/{asset}: the page's scripts, style and icon (the document lists the names).
func (s *Server) docsAsset(w http.ResponseWriter, r *http.Request) error {
	return serveDoc(w, chi.URLParam(r, "asset"), "public, max-age=86400")
}

func serveDoc(w http.ResponseWriter, name, cache string) error {
	b, err := docsFiles.ReadFile("docs/" + name)
	if err != nil {
		return errNotFound("Route GET:/docs/" + name + " not found")
	}
	h := w.Header()
	h.Set("Content-Type", docsTypes[path.Ext(name)])
	h.Set("Cache-Control", cache)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
