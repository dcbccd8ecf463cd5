{{/*
The alert rules, as the groups of a Prometheus rule file. prometheusrule.yaml wraps them in a
PrometheusRule; deploy/observability/tokensmith-rules.yaml is this, rendered for a scrape job
named "tokensmith" (go run ./gen in deploy/ writes it). Each alert's runbook is the section of
docs/kubernetes.md named after it.
*/}}
{{- define "tokensmith.ruleGroups" -}}
{{- $r := .Values.prometheusRule }}
{{- $s := $r.selector | default (printf "namespace=%q,job=\"%s-admin\"" .Release.Namespace (include "tokensmith.fullname" .)) }}
{{- $by := "namespace, job" }}
{{- $extra := $r.additionalLabels }}
groups:
  - name: tokensmith
    rules:
      - alert: TokensmithDown
        # No replica has been scraped for five minutes: nothing issues tokens, or nothing is
        # watching the ones that do.
        expr: absent(tokensmith_live_replicas{ {{- $s -}} })
        for: 5m
        labels:
          severity: critical
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: No Tokensmith replica is being scraped.
          description: {{ printf "No replica matching {%s} has answered a scrape for 5 minutes." $s | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithdown
      - alert: TokensmithReplicasMissing
        # Fewer replicas are scraped than the deployment should run.
        expr: count by ({{ $by }}) (tokensmith_live_replicas{ {{- $s -}} }) < {{ include "tokensmith.minReplicas" . }}
        for: 10m
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Fewer Tokensmith replicas are running than expected.
          description: {{ printf "Only {{ $value }} replicas are scraped in {{ $labels.namespace }}/{{ $labels.job }}; at least %s are expected." (include "tokensmith.minReplicas" .) | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithreplicasmissing
      - alert: TokensmithReplicasDisagree
        # Replicas count each other through heartbeats in the store; different counts mean
        # some heartbeats do not arrive, and the reuse pool is sized wrong on some replicas.
        expr: max by ({{ $by }}) (tokensmith_live_replicas{ {{- $s -}} }) != min by ({{ $by }}) (tokensmith_live_replicas{ {{- $s -}} })
        for: 10m
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith replicas disagree on how many replicas are live.
          description: {{ "Replicas in {{ $labels.namespace }}/{{ $labels.job }} count different numbers of live replicas." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithreplicasdisagree
      - alert: TokensmithTokenErrors
        # Token requests answered with the server's own errors: server_error, or
        # temporarily_unavailable when the store does not answer in time.
        expr: |-
          sum by ({{ $by }}) (rate(tokensmith_token_requests_total{ {{- $s -}} ,outcome=~"server_error|temporarily_unavailable"}[5m]))
            / sum by ({{ $by }}) (rate(tokensmith_token_requests_total{ {{- $s -}} }[5m]))
            > {{ $r.errorRatio }}
        for: 5m
        labels:
          severity: critical
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith fails token requests.
          description: {{ "{{ $value | humanizePercentage }} of token requests in {{ $labels.namespace }}/{{ $labels.job }} end in server_error or temporarily_unavailable." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithtokenerrors
      - alert: TokensmithStoreUnavailable
        # Store calls of the token path fail (unreachable, timed out, broken) without pause.
        expr: sum by ({{ $by }}) (rate(tokensmith_store_call_errors_total{ {{- $s -}} }[1m])) > 0
        for: 3m
        labels:
          severity: critical
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith cannot reach its store.
          description: {{ "Store calls in {{ $labels.namespace }}/{{ $labels.job }} fail at {{ $value | humanize }}/s; requests that need the store are answered 503." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithstoreunavailable
      - alert: TokensmithRateLimited
        # Requests refused with 429: clients past their daily or hourly limit, or usernames
        # in failed-login backoff.
        expr: sum by ({{ $by }}) (rate(tokensmith_requests_limited_total{ {{- $s -}} }[5m])) > {{ $r.limitedPerSecond }}
        for: 15m
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith refuses many requests with 429.
          description: {{ "{{ $value | humanize }} requests/s in {{ $labels.namespace }}/{{ $labels.job }} are refused with 429." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithratelimited
      - alert: TokensmithSlowTokens
        # p99 of the token endpoint; the password grant is left out, as bcrypt is slow on purpose.
        expr: |-
          histogram_quantile(0.99, sum by ({{ $by }}, le) (rate(tokensmith_token_request_duration_seconds_bucket{ {{- $s -}} ,grant!="password"}[5m])))
            > {{ $r.p99Seconds }}
        for: 10m
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith answers token requests slowly.
          description: {{ "The token endpoint's p99 in {{ $labels.namespace }}/{{ $labels.job }} is {{ $value | humanizeDuration }}." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithslowtokens
      - alert: TokensmithSigningKeyOld
        # The signing key in use has signed for longer than the key policy allows.
        expr: max by ({{ $by }}) (tokensmith_signing_key_age_seconds{ {{- $s -}} }) > {{ int64 $r.signingKeyMaxAgeSeconds }}
        for: 1h
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith's signing key is old.
          description: {{ "The signing key in {{ $labels.namespace }}/{{ $labels.job }} has signed for {{ $value | humanizeDuration }}; rotate it." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithsigningkeyold
      - alert: TokensmithAuditEventsDropped
        # The audit sink falls behind and its buffer is full: events are lost.
        expr: sum by ({{ $by }}) (rate(tokensmith_audit_events_dropped_total{ {{- $s -}} }[5m])) > 0
        for: 5m
        labels:
          severity: warning
          {{- with $extra }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: Tokensmith drops audit events.
          description: {{ "{{ $value | humanize }} audit events/s in {{ $labels.namespace }}/{{ $labels.job }} are dropped: the sink falls behind." | quote }}
          runbook_url: {{ $r.runbookBaseURL }}#tokensmithauditeventsdropped
{{- end }}
