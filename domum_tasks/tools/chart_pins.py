"""sha256 pins of the Helm charts `inv tools.install` fetches for flux.validate (data only; see
tools/charts.py). Key: "<chart>/<version>" as the tree pins it.

  - a chart from a HelmRepository: the sha256 of its .tgz (the `digest` of the repository's
    index.yaml entry, which the fetch also checks);
  - a chart from an OCI registry: the sha256 of its manifest (what Flux's OCIRepository
    `ref.digest` pins); the manifest names the chart layer by digest, and that is checked too.
    An OCIRepository in the tree with `ref.digest` pins itself.
A chart with no pin here (or in the tree) is never downloaded: add its pin first, from a source
you trust (`helm pull` then `sha256sum`, or `crane digest`). Without a pin, point DOMUM_CHARTS at
a chart directory instead (CI uses ../shared/contracts/charts).
"""

from __future__ import annotations

# Empty: no published chart digest could be verified from upstream offline. Add one as
# "traefik/41.3.0": "<sha256>" after checking it yourself.
CHARTS: dict[str, str] = {}
