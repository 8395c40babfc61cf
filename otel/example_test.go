package usersotel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/userkit/users"
	usersotel "github.com/userkit/users/otel"
)

// The bridge as the Manager's event hook, and RecordError where a handler
// answers an error. A ManualReader stands in for the application's exporter.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	store := users.NewMemoryStore()

	bridge, err := usersotel.New(nil) // the global MeterProvider and TracerProvider
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := users.New(store, &users.Options{OnEvent: bridge.OnEvent})
	if err != nil {
		fmt.Println(err)
		return
	}

	createUser := func(w http.ResponseWriter, r *http.Request) {
		_, err := m.Create(r.Context(), users.NewUser{Email: r.FormValue("email"), Password: r.FormValue("password")})
		if err != nil {
			bridge.RecordError(r.Context(), err) // counts each refused field by its code
			users.WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}
	createUser(httptest.NewRecorder(), httptest.NewRequest("POST", "/users?email=ada.example.com&password=x", nil))
	m.FlushEvents(ctx)

	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				fmt.Println(mt.Name, strings.ReplaceAll(dp.Attributes.Encoded(attribute.DefaultEncoder()), ",", " "), dp.Value)
			}
		}
	}
	// Unordered output:
	// users.validation.errors users.validation.code=malformed users.validation.field=email 1
	// users.validation.errors users.validation.code=too_short users.validation.field=password 1
}
