// Package ginverify is the Gin adapter of package verify: the same checks and the same
// RFC 6750 answers, as a gin.HandlerFunc. It lives apart from verify so that an API on
// net/http does not build Gin.
//
//	r.GET("/orders", ginverify.Require(v, verify.Scopes("orders:read")), func(c *gin.Context) {
//		claims, _ := ginverify.Claims(c)
//		c.JSON(200, gin.H{"client": claims.ClientID})
//	})
package ginverify

import (
	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/verify"
)

// Require returns Gin middleware that lets through requests whose token satisfies opts, with
// the verified claims in the request context (Claims, or verify.FromContext on
// c.Request.Context()), and aborts the others with verify's RFC 6750 answer. The refusal is
// also recorded in c.Errors, for Gin's loggers.
func Require(v *verify.Verifier, opts ...verify.Option) gin.HandlerFunc {
	rt := v.Route(opts...)
	return func(c *gin.Context) {
		claims, err := rt.Authenticate(c.Request)
		if err != nil {
			rt.Refuse(c.Writer, c.Request, err)
			_ = c.Error(err).SetType(gin.ErrorTypePrivate)
			c.Abort()
			return
		}
		c.Request = c.Request.WithContext(verify.NewContext(c.Request.Context(), claims))
		c.Next()
	}
}

// Claims returns the claims Require verified for this request.
func Claims(c *gin.Context) (*verify.Claims, bool) {
	return verify.FromContext(c.Request.Context())
}
