package rules

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"
)

// qaUsers reads an experience's qaUsers list: entries {userId: id,
// variant: n} or {profileId: id, variant: n}, with variant a whole number
// below variants (the experience's variant count, baseline included). A
// visitor listed twice in one experience is an error, so the file says
// one thing about each.
func (p *parser) qaUsers(n *yaml.Node, variants int) []QAUser {
	items := p.seq(n, "qaUsers")
	var out []QAUser
	seen := map[string]int{} // "u\x00id" or "p\x00id" -> line
	for j, it := range items {
		field := fmt.Sprintf("qaUsers[%d]", j)
		f := p.fields(it, field, "userId", "profileId", "variant")
		if f == nil {
			continue
		}
		it = resolve(it)
		q := QAUser{Pos: p.pos(it)}
		uid, hasUser := f["userId"]
		pid, hasProfile := f["profileId"]
		var key string
		var idNode *yaml.Node
		switch {
		case hasUser && hasProfile:
			p.errf(pid[0], field+".profileId", "give userId or profileId, not both")
			continue
		case hasUser:
			id, ok := p.id(uid[1], field+".userId")
			if !ok {
				continue
			}
			q.UserID, key, idNode = id, "userId "+id, uid[1]
		case hasProfile:
			id, ok := p.id(pid[1], field+".profileId")
			if !ok {
				continue
			}
			q.ProfileID, key, idNode = id, "profileId "+id, pid[1]
		default:
			p.errf(it, field, "needs a userId or a profileId")
			continue
		}
		kv, ok := f["variant"]
		if !ok {
			p.errf(it, field+".variant", "missing")
			continue
		}
		v, ok := p.num(kv[1], field+".variant")
		if !ok {
			continue
		}
		if v < 0 || v != math.Trunc(v) || v >= float64(variants) {
			p.errf(resolve(kv[1]), field+".variant", "%v is not a variant index: want a whole number from 0 (the baseline) to %d", v, variants-1)
			continue
		}
		q.Variant = int(v)
		if line, dup := seen[key]; dup {
			p.errf(resolve(idNode), field, "%s is listed twice (first at line %d)", key, line)
			continue
		}
		seen[key] = q.Pos.Line
		out = append(out, q)
	}
	return out
}
