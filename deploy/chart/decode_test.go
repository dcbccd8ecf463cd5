package chart

import (
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// objects are the decoded documents of one rendering, by kind and name.
type objects struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	secrets         map[string]*corev1.Secret
	configMaps      map[string]*corev1.ConfigMap
	claims          map[string]*corev1.PersistentVolumeClaim
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	ingresses       map[string]*networkingv1.Ingress
	serviceMonitors map[string]*monitoringv1.ServiceMonitor
	rules           map[string]*monitoringv1.PrometheusRule
}

// decode turns every document into its Kubernetes API type, strictly: a field the type does
// not have (a misspelt or misplaced key in a template) is an error, as is a kind this test
// does not know, so a new template cannot slip past the checks.
func decode(docs []Doc) (*objects, error) {
	o := &objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		ingresses: map[string]*networkingv1.Ingress{}, serviceMonitors: map[string]*monitoringv1.ServiceMonitor{},
		rules: map[string]*monitoringv1.PrometheusRule{},
	}
	for _, d := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(d.YAML), &head); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Source, err)
		}
		name := head.Metadata.Name
		var err error
		switch head.APIVersion + "/" + head.Kind {
		case "apps/v1/Deployment":
			err = strict(d, name, o.deployments)
		case "v1/Service":
			err = strict(d, name, o.services)
		case "v1/Secret":
			err = strict(d, name, o.secrets)
		case "v1/ConfigMap":
			err = strict(d, name, o.configMaps)
		case "v1/PersistentVolumeClaim":
			err = strict(d, name, o.claims)
		case "v1/ServiceAccount":
			err = strict(d, name, o.serviceAccounts)
		case "policy/v1/PodDisruptionBudget":
			err = strict(d, name, o.pdbs)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = strict(d, name, o.hpas)
		case "networking.k8s.io/v1/Ingress":
			err = strict(d, name, o.ingresses)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			err = strict(d, name, o.serviceMonitors)
		case "monitoring.coreos.com/v1/PrometheusRule":
			err = strict(d, name, o.rules)
		default:
			err = fmt.Errorf("%s: kind %s %s has no decoder in this test", d.Source, head.APIVersion, head.Kind)
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

// strict decodes one document into a new T, refusing unknown and duplicate fields and a
// second object of the same kind and name.
func strict[T any](d Doc, name string, into map[string]*T) error {
	if name == "" {
		return fmt.Errorf("%s: no metadata.name", d.Source)
	}
	if _, dup := into[name]; dup {
		return fmt.Errorf("%s: a second object named %q", d.Source, name)
	}
	v := new(T)
	if err := yaml.UnmarshalStrict([]byte(d.YAML), v); err != nil {
		return fmt.Errorf("%s: %w", d.Source, err)
	}
	into[name] = v
	return nil
}
