package carddav

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/emersion/go-webdav"
)

// mkcol creates an address book at a path of book depth, from a plain MKCOL
// or an extended one (RFC 5689) carrying displayname and description, as
// DAVx5 sends.
func (s *session) mkcol(w http.ResponseWriter, t target) error {
	switch t.kind {
	case kindBook:
	case kindObject:
		return webdav.NewHTTPError(http.StatusForbidden, errors.New("carddav: address books do not nest"))
	default:
		return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("carddav: collection exists"))
	}
	root, err := readXML(s.r)
	if err != nil {
		return err
	}
	var props BookProps
	if root != nil {
		if root.XMLName != davName("mkcol") {
			return webdav.NewHTTPError(http.StatusUnsupportedMediaType, fmt.Errorf("carddav: MKCOL body %s", root.XMLName.Local))
		}
		for i := range root.Children {
			set := &root.Children[i]
			if set.XMLName != davName("set") {
				continue
			}
			ps := set.child(davName("prop"))
			for j := range ps.childrenOrNil() {
				p := &ps.Children[j]
				switch p.XMLName {
				case propResourceType:
					if p.child(cardName("addressbook")) == nil {
						return &PreconditionError{Status: http.StatusForbidden, Condition: validResourceType}
					}
				case propDisplayName:
					v := strings.TrimSpace(p.Text)
					props.DisplayName = &v
				case propDescription:
					v := strings.TrimSpace(p.Text)
					props.Description = &v
				}
				// Other properties (colours, push topics) are not kept.
			}
		}
	}
	ctx := s.r.Context()
	_, err = s.be.AddressBook(ctx, t.book)
	if err == nil {
		return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("carddav: address book exists"))
	}
	if status, ok := httpStatus(err); !ok || status != http.StatusNotFound {
		return err
	}
	if _, err := s.be.CreateAddressBook(ctx, t.book, props); err != nil {
		return err
	}
	w.Header().Set("Location", t.href())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// childrenOrNil returns the children of a possibly missing element.
func (e *element) childrenOrNil() []element {
	if e == nil {
		return nil
	}
	return e.Children
}

// patchOp is one property of a PROPPATCH, set or removed.
type patchOp struct {
	el     *element
	remove bool
}

// proppatch answers PROPPATCH (RFC 4918 §9.2) atomically: a book's
// displayname and description, the home set's CS:me-card; anything else is
// 403, and then the rest is 424 and nothing changes. Unlike go-webdav's, the
// 207 names each property once, in its own propstat.
func (s *session) proppatch(w http.ResponseWriter, t target) error {
	root, err := readXML(s.r)
	if err != nil {
		return err
	}
	if root == nil || root.XMLName != davName("propertyupdate") {
		return webdav.NewHTTPError(http.StatusBadRequest, errors.New("carddav: expected DAV:propertyupdate"))
	}
	var ops []patchOp
	for i := range root.Children {
		c := &root.Children[i]
		remove := c.XMLName == davName("remove")
		if !remove && c.XMLName != davName("set") {
			continue
		}
		p := c.child(davName("prop"))
		for j := range p.childrenOrNil() {
			ops = append(ops, patchOp{el: &p.Children[j], remove: remove})
		}
	}
	ctx := s.r.Context()
	if t.kind == kindBook {
		if _, err := s.be.AddressBook(ctx, t.book); err != nil {
			return err
		}
	}
	var (
		props     BookProps
		meCard    *string
		failed    = make([]bool, len(ops))
		anyFailed bool
	)
	for i, op := range ops {
		text := strings.TrimSpace(op.el.Text)
		if op.remove {
			text = ""
		}
		switch {
		case t.kind == kindBook && op.el.XMLName == propDisplayName:
			props.DisplayName = &text
		case t.kind == kindBook && op.el.XMLName == propDescription:
			props.Description = &text
		case t.kind == kindHome && op.el.XMLName == propMeCard:
			href := ""
			if h := op.el.child(davName("href")); h != nil && !op.remove {
				href = strings.TrimSpace(h.Text)
			}
			meCard = &href
		default:
			failed[i], anyFailed = true, true
		}
	}
	resp := response{href: t.href()}
	for i, op := range ops {
		status := http.StatusOK
		if failed[i] {
			status = http.StatusForbidden
		} else if anyFailed {
			status = http.StatusFailedDependency
		}
		resp.add(status, prop{name: op.el.XMLName})
	}
	if !anyFailed {
		if props.DisplayName != nil || props.Description != nil {
			if err := s.be.UpdateAddressBook(ctx, t.book, props); err != nil {
				return err
			}
		}
		if meCard != nil {
			if *meCard == "" {
				s.meCards.Delete(s.user)
			} else {
				s.meCards.Store(s.user, *meCard)
			}
		}
	}
	writeMultistatus(w, &multistatus{responses: []response{resp}})
	return nil
}
