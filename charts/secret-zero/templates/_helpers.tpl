{{/* The prefix of every object: the release name when it already says secret-zero
(helm install secret-zero ... gives the names of manifests/), else release-chart. */}}
{{- define "secret-zero.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "secret-zero.webhook.name" -}}{{ include "secret-zero.fullname" . }}-webhook{{- end -}}
{{- define "secret-zero.rotator.name" -}}{{ include "secret-zero.fullname" . }}-rotator{{- end -}}
{{- define "secret-zero.tlsSecret" -}}{{ include "secret-zero.webhook.name" . }}-tls{{- end -}}

{{- define "secret-zero.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "secret-zero.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secret-zero
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end -}}

{{- define "secret-zero.webhook.selector" -}}
app.kubernetes.io/name: {{ include "secret-zero.webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "secret-zero.rotate.selector" -}}
app.kubernetes.io/name: {{ include "secret-zero.fullname" . }}-rotate
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The self-signed CA and serving certificate (webhook.tls.mode self-signed), as JSON
{ca, crt, key}, base64. Generated once per render (kept on the root context, which every
template of the chart shares, so the Secret and the caBundle agree) and kept across
upgrades: lookup finds the Secret in a cluster (offline it finds nothing). */}}
{{- define "secret-zero.selfSigned" -}}
{{- if not (hasKey . "secretZeroSelfSigned") -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "secret-zero.tlsSecret" .) -}}
{{- $tls := dict -}}
{{- if and $secret (index ($secret.data | default dict) "ca.crt") -}}
{{- $tls = dict "ca" (index $secret.data "ca.crt") "crt" (index $secret.data "tls.crt") "key" (index $secret.data "tls.key") -}}
{{- else -}}
{{- $svc := include "secret-zero.webhook.name" . -}}
{{- $days := int .Values.webhook.tls.selfSignedValidityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $dns := list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $cert := genSignedCert (first $dns) nil $dns $days $ca -}}
{{- $tls = dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set . "secretZeroSelfSigned" $tls -}}
{{- end -}}
{{- get . "secretZeroSelfSigned" | toJson -}}
{{- end -}}
