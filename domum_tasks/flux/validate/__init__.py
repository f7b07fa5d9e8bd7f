"""`inv flux.validate`: render every Flux Kustomization offline and check what Flux would reject.

model.py      Finding, Obj (a rendered object and where it came from), FluxKs
render.py     `kubectl kustomize` per Kustomization path (in parallel) and Flux's own
              post-build steps (targetNamespace, strict ${VAR} substitution)
subst.py      Flux 2.9's strict post-build substitution on one object
schemas.py    core kinds with kubernetes-validate, CRs with kubeconform-layout JSON schemas
crossref.py   references between objects: sources, dependsOn, namespaces, CRD ordering
semantics.py  rules of the real controllers: chart/chartRef, removed APIs, SOPS, PSA, ...
site.py       the tree against the inventory (address pool, VIP, domain)
core.py       the pipeline: entry points -> world of objects -> findings
"""
