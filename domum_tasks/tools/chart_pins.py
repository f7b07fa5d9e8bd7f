"""Maintainer-verified sha256 pins of the Helm charts `inv tools.install` fetches for
flux.validate (data only; see tools/charts.py). Key: "<chart>/<version>" as the tree pins it.

  - a chart from a HelmRepository: the sha256 of its .tgz (the `digest` of the repository's
    index.yaml entry, which the fetch also checks);
  - a chart from an OCI registry: the sha256 of its manifest (what Flux's OCIRepository
    `ref.digest` pins); the manifest names the chart layer by digest, and that is checked too.
    An OCIRepository in the tree with `ref.digest` pins itself.
A pin here wins over config/charts.lock. A chart with no pin is still fetched: on first use it
is verified against the digest its source publishes (over TLS) and that digest is recorded in
config/charts.lock, which pins every later fetch (trust on first use, then pinned: see
tools/chartlock.py). Add a pin here only after checking it yourself (`helm pull` then
`sha256sum`, or `crane digest`), e.g. from a reviewed config/charts.lock entry.
"""

from __future__ import annotations

# Empty: no published chart digest could be verified from upstream offline (this repo was
# written without internet access); config/charts.lock records them on first use instead.
CHARTS: dict[str, str] = {}
