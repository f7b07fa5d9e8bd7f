"""`inv flux.validate`: render every Flux Kustomization offline and check what Flux would reject.

api.py        the entry point: settings from the inventory, every check, sorted findings
core.py       the pipeline: entry points -> rendered Kustomizations -> one world per overlay,
              and post-build substitution with the tree's substituteFrom ConfigMaps
render.py     `kubectl kustomize` per path (in parallel, shared builds), Flux's generated
              kustomization for plain directories and its spec.patches/images/components
subst.py      Flux 2.9's strict post-build substitution on one object
schemas.py    core kinds with kubernetes-validate, CRs with kubeconform-layout JSON schemas
crossref.py   references: sources, valuesFrom, dependsOn and cycles, namespaces, CRD order
semantics.py  rules of the real controllers: chart/chartRef, removed APIs, plaintext
              Secrets and decryption, cert-manager's token, Pod Security, Bitnami
site.py       the tree against the inventory (MetalLB pool, VIP, domain)
traefik.py    Middlewares and Services that IngressRoutes, Ingresses and annotations name
envdup.py     duplicate env names in containers the tree writes (server-side apply rejects)
treefiles.py  the committed files: SOPS files vs .sops.yaml, age keys, gotk-components header
model.py, scope.py, charts.py   data types, cluster-scoped kinds, what charts ship
"""
