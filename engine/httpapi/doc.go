// Package httpapi serves a tailor [engine.Engine] over HTTP in the wire format
// of Ninetailed's Experience API, so that Ninetailed's published JavaScript
// clients (@ninetailed/experience.js-shared, -node, ...) can point their url
// option at a tailor server.
//
// The handler is a thin codec: it decodes requests, takes what the transport
// knows (client IP, locale, preflight) and hands everything to the engine,
// whose validation and errors decide the answer.
//
// # Endpoints
//
// All under /v2/organizations/{org}/environments/{env}:
//
//	POST   /profiles         create a profile (Engine.Identify with "")
//	POST   /profiles/{id}    upsert the profile id (Engine.Identify)
//	GET    /profiles/{id}    the profile with its current evaluation (Engine.Get)
//	DELETE /profiles/{id}    delete the profile and its aliases (Engine.Delete)
//	POST   /events           synchronous batch by anonymousId (Engine.IdentifyBatch),
//	                         answering {"profiles": [Profile, ...]}
//	POST   /import/events    asynchronous batch, answered once durably queued
//	                         (Engine.Import)
//
// The create, upsert and get answers carry an [engine.Response]:
// {"profile": ..., "experiences": [...], "changes": [...]}; package engine
// documents the request body and every field. A batch (/events and
// /import/events) takes the same body: every event needs an anonymousId,
// which names its profile, with at most [engine.MaxEvents] events,
// [engine.MaxIdentifyEvents] identify events and [engine.MaxBatchProfiles]
// profiles; it is validated whole before anything is written. An import
// batch is applied by a background worker, exactly once per profile group,
// and survives restarts. Delete answers {"data": {}}.
//
// Paths are matched as sent: one with "..", "." or "//" is not cleaned or
// redirected but answered 404, so a client never re-sends a DELETE or POST
// to another path. OPTIONS on any path is a CORS preflight, answered 204
// with the allowed methods and headers (Content-Type, X-Force-IP);
// Access-Control-Allow-Origin is set for [Options.AllowedOrigins].
//
// Query parameters: locale (names in that language) and type=preflight
// (evaluate, persist nothing). The X-Force-IP header overrides the client IP;
// otherwise the IP is the connection's peer, or, when the peer is one of
// [Options.TrustedProxies], the right-most untrusted X-Forwarded-For address.
// Bodies are JSON whatever their Content-Type (the clients send text/plain to
// avoid a CORS preflight). Unknown JSON fields are ignored. A body sent with
// Content-Encoding: gzip is decoded, and [Options.MaxBodyBytes] then bounds
// the decoded size as well as the size on the wire; other encodings are
// refused with 415.
//
// # Envelope and errors
//
// Success: {"data": ..., "error": null, "message": "ok"}.
// Failure: {"data": {}, "error": {"code": "ERR_..."}, "message": "..."} with
//
//	400 ERR_INVALID_DATA            malformed JSON, wrong types, invalid input (the
//	                                message names the field at fault)
//	403 ERR_IDENTITY_UNVERIFIED     engine.ErrIdentityUnverified: an identify event
//	                                without a valid traits.userHash
//	404 ERR_PROFILE_NOT_FOUND       engine.ErrNotFound
//	404 ERR_NAMESPACE_MISMATCH      org/env not served (Options.Org, Options.Env)
//	404 ERR_NOT_FOUND               no such endpoint, or a path with "..", "." or "//"
//	                                (never a redirect)
//	405 ERR_METHOD_NOT_ALLOWED      endpoint exists, other method
//	413 ERR_PAYLOAD_TOO_LARGE       body over Options.MaxBodyBytes, on the wire or
//	                                decoded
//	415 ERR_UNSUPPORTED_MEDIA_TYPE  a Content-Encoding other than gzip or identity
//	429 ERR_PROFILE_OVERLOAD        engine.ErrOverload
//	500 ERR_INTERNAL_SERVER_ERROR   anything else, panics included (logged, never
//	                                shown)
//	503 ERR_SERVICE_UNAVAILABLE     engine closed or request timed out
//	503 ERR_QUEUE_FULL              the import queue is full (retry later)
//	507 ERR_STORAGE_FULL            engine.ErrDiskFull: the disk is nearly full;
//	                                nothing was written
//
// 503 answers carry Retry-After; the published client retries them.
//
// # Admin features: explanations and QA overrides
//
// With [Options.AdminToken] set (server flag -admin-token), two
// extensions the Ninetailed clients ignore are served to requests with
// "Authorization: Bearer <token>":
//
//	GET    /profiles/{id}/explain   why the profile gets what it gets
//	                                (Engine.Explain, writes nothing)
//
// and QA overrides on POST /profiles, POST /profiles/{id}, POST /events
// and explain: [ParamForceVariant] (force-variant=<experienceId>:<variant>)
// and [ParamForceAudience] (force-audience=<audienceId>:in or :out), as
// query parameters (repeatable, comma-separated) or as the
// [HeaderForceVariant] and [HeaderForceAudience] headers. A forced variant
// is never stored as sticky and never exposed (engine.Overrides). A
// request that needs the token and lacks it, or has another, gets
// 401 ERR_UNAUTHORIZED with a WWW-Authenticate challenge and nothing runs;
// overrides sent to another endpoint are a 400. Without a token
// configured the features are off: explain is a 404 and the parameters
// are ignored, as any unknown parameter is. Explanations honour
// [Options.RedactTraits].
package httpapi
