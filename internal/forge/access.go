package forge

import (
	"context"
	"fmt"
	"net/http"
)

// Access is what the token may do on a repository, as GitHub reports it.
type Access struct {
	FullName string
	Push     bool // push branches, and so open pull requests from them
	Admin    bool
}

// Access reads the repository with the token (GET /repos/{owner}/{repo}) and
// returns the permissions GitHub reports for it. A token that cannot see the
// repository gets GitHub's 404.
func (g *GitHub) Access(ctx context.Context, r Repo) (Access, error) {
	var out struct {
		FullName    string `json:"full_name"`
		Permissions *struct {
			Admin bool `json:"admin"`
			Push  bool `json:"push"`
		} `json:"permissions"`
	}
	if err := g.do(ctx, r, http.MethodGet, "", nil, &out); err != nil {
		return Access{}, fmt.Errorf("read repository: %w", err)
	}
	a := Access{FullName: out.FullName}
	// No permissions object: GitHub shows none to an anonymous or app
	// token without access, which is no access.
	if out.Permissions != nil {
		a.Push, a.Admin = out.Permissions.Push, out.Permissions.Admin
	}
	return a, nil
}
