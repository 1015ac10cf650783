package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/tailorhq/tailor/engine"
)

// apiError is an error with its HTTP status and envelope code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return "httpapi: " + e.Message }

var errInternal = &apiError{http.StatusInternalServerError, "ERR_INTERNAL_SERVER_ERROR", "internal server error"}

// envelope is the wire envelope of every answer.
type envelope struct {
	Data    any        `json:"data"`
	Error   *errorCode `json:"error"`
	Message string     `json:"message"`
}

type errorCode struct {
	Code string `json:"code"`
}

// decodeBody reads r's body (already size-limited to limit bytes) as one
// JSON value into v, whatever the Content-Type. It rejects what the engine
// must never see: empty bodies, malformed JSON, trailing data and wrong
// types, each with a message naming the place at fault. Unknown fields are
// ignored.
func decodeBody(r *http.Request, v any, limit int64) error {
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidData("body: empty; expected a JSON object")
	}
	// encoding/json would silently replace invalid UTF-8 with U+FFFD and
	// store the mangled strings; refuse the body instead.
	if !utf8.Valid(body) {
		return invalidData("body: not valid UTF-8")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return invalidData(fmt.Sprintf("body: malformed JSON at byte %d: %v", syn.Offset, syn))
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "body"
			}
			return invalidData(fmt.Sprintf("%s: expected %s, got JSON %s", field, jsonKind(typ.Type), typ.Value))
		default:
			return invalidData("body: " + err.Error())
		}
	}
	return nil
}

// readBody reads r's body, whose size on the wire the caller has limited
// to limit bytes with http.MaxBytesReader. A gzip Content-Encoding is
// decoded, with the same limit applied to the decoded size (a small
// compressed body must not expand without bound); any other encoding but
// identity is refused with 415, naming it.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(strings.Join(r.Header.Values("Content-Encoding"), ", ")))
	switch enc {
	case "", "identity":
		body, err := io.ReadAll(r.Body)
		return body, readError(err, "")
	case "gzip", "x-gzip":
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, "ERR_UNSUPPORTED_MEDIA_TYPE",
			fmt.Sprintf("body: Content-Encoding %q is not supported; send the body as is or with gzip", enc)}
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, readError(err, "gzip")
	}
	defer zr.Close()
	body, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, readError(err, "gzip")
	}
	if int64(len(body)) > limit {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "ERR_PAYLOAD_TOO_LARGE",
			fmt.Sprintf("body: larger than %d bytes decoded (Content-Encoding gzip)", limit)}
	}
	return body, nil
}

// readError maps an error reading the body (decoding it with encoding,
// when not empty) to the API's answer.
func readError(err error, encoding string) error {
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return &apiError{http.StatusRequestEntityTooLarge, "ERR_PAYLOAD_TOO_LARGE",
			fmt.Sprintf("body: larger than %d bytes", tooBig.Limit)}
	case encoding != "" && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return invalidData("body: Content-Encoding " + encoding + ", but the body is not valid " + encoding + " data")
	}
	return &apiError{http.StatusBadRequest, "ERR_INVALID_DATA", "body: could not be read"}
}

func invalidData(msg string) error {
	return &apiError{http.StatusBadRequest, "ERR_INVALID_DATA", msg}
}

// jsonKind names the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "a " + t.String()
}

// classify maps an error to its API status, code and message. Internal
// errors are logged by the caller and never shown.
func classify(err error) *apiError {
	var ae *apiError
	var in *engine.InputError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &in):
		return &apiError{http.StatusBadRequest, "ERR_INVALID_DATA", in.Field + ": " + in.Reason}
	case errors.Is(err, engine.ErrInvalidInput):
		return &apiError{http.StatusBadRequest, "ERR_INVALID_DATA", "invalid input"}
	case errors.Is(err, engine.ErrNotFound):
		return &apiError{http.StatusNotFound, "ERR_PROFILE_NOT_FOUND", "profile not found"}
	case errors.Is(err, engine.ErrIdentityUnverified):
		return &apiError{http.StatusForbidden, "ERR_IDENTITY_UNVERIFIED",
			"identify: traits.userHash is missing or does not match the userId"}
	case errors.Is(err, engine.ErrDiskFull):
		return &apiError{http.StatusInsufficientStorage, "ERR_STORAGE_FULL", "storage is full; nothing was written"}
	case errors.Is(err, engine.ErrOverload):
		return &apiError{http.StatusTooManyRequests, "ERR_PROFILE_OVERLOAD", "too many requests for this profile; retry later"}
	case errors.Is(err, engine.ErrQueueFull):
		return &apiError{http.StatusServiceUnavailable, "ERR_QUEUE_FULL", "import queue is full; retry later"}
	case errors.Is(err, engine.ErrClosed):
		return &apiError{http.StatusServiceUnavailable, "ERR_SERVICE_UNAVAILABLE", "server is shutting down"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusServiceUnavailable, "ERR_SERVICE_UNAVAILABLE", "request timed out"}
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is shutting down); nobody
		// reads this answer, and it is no internal error worth logging.
		return &apiError{http.StatusServiceUnavailable, "ERR_SERVICE_UNAVAILABLE", "request canceled"}
	}
	return errInternal
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae == errInternal {
		h.log.Error("httpapi: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	h.writeJSON(w, r, ae.Status, envelope{Data: struct{}{}, Error: &errorCode{ae.Code}, Message: ae.Message})
}

func (h *handler) writeData(w http.ResponseWriter, r *http.Request, data any) {
	h.writeJSON(w, r, http.StatusOK, envelope{Data: data, Message: "ok"})
}

// writeJSON encodes v fully before writing anything, so an encoding failure
// still gets a clean 500.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("httpapi: encode answer", "method", r.Method, "path", r.URL.Path, "err", err)
		status = errInternal.Status
		b, _ = json.Marshal(envelope{Data: struct{}{}, Error: &errorCode{errInternal.Code}, Message: errInternal.Message})
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
