"""OpenSearch: the store (:mod:`.store`), plans compiled to request bodies (:mod:`.compiler`,
the only place that builds query JSON), connecting to a cluster (:mod:`.client`, its JSON
through :mod:`.serialization`), hits explained (:mod:`.hits`) and the server versions ebr
supports (:mod:`.versions`).  Index bodies come from the schema
(:mod:`ebr.mappings.opensearch_mapping`)."""
