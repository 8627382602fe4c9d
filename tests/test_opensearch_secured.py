"""The OpenSearch store on a secured node (TLS with the node's own CA, basic auth, a read-only
user), as production clusters run: what works with the right credentials, and clean errors
(no traceback, no password) without them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.opensearch.store import OpenSearchStore
from ebr.stores.protocol import IndexDocument, search_text
from support.cluster import SecuredCluster

SCHEMA = Schema.create("secured", (Namespace("a", "keyword"),), (EmbeddingKey("m", 3),))
INDEX = "ebr-secured"
DOCS = [IndexDocument(f"d{i}", {"a": [str(i % 2)]}, embeddings={"m": [1.0, i, 0.5]})
        for i in range(6)]


@pytest.fixture(scope="module")
def secured(secured_opensearch: SecuredCluster) -> Iterator[SecuredCluster]:
    cluster = secured_opensearch
    with OpenSearchStore.create(cluster.url, INDEX, SCHEMA, engine="lucene", user="admin",
                                password=cluster.passwords["admin"], ca_certs=cluster.ca) as store:
        store.add(DOCS)
    yield cluster
    OpenSearchStore.drop(cluster.url, INDEX, user="admin", password=cluster.passwords["admin"],
                         ca_certs=cluster.ca)


def test_the_admin_reads_and_writes_over_tls(secured: SecuredCluster) -> None:
    with OpenSearchStore.open(secured.url, INDEX, user="admin",
                              password=secured.passwords["admin"], ca_certs=secured.ca) as store:
        assert store.add([IndexDocument("extra", {"a": ["1"]})]).added == 1
        assert "extra" in search_text(store, "(term a:1)", {}, 10).ids
        assert store.delete(["extra"]).deleted == 1


def test_credentials_come_from_the_environment_too(secured: SecuredCluster,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBR_OPENSEARCH_USER", "admin")
    monkeypatch.setenv("EBR_OPENSEARCH_PASSWORD", secured.passwords["admin"])
    monkeypatch.setenv("EBR_OPENSEARCH_CA", secured.ca)
    with OpenSearchStore.open(secured.url, INDEX) as store:
        assert store.stats().documents == len(DOCS)


def test_without_the_ca_the_certificate_is_refused(secured: SecuredCluster) -> None:
    with pytest.raises(StoreError, match="TLS failed") as caught:
        OpenSearchStore.open(secured.url, INDEX, user="admin",
                             password=secured.passwords["admin"], timeout=10)
    assert secured.passwords["admin"] not in str(caught.value)


def test_a_wrong_password_is_a_clean_error_without_the_password(secured: SecuredCluster) -> None:
    wrong = "not-" + secured.passwords["admin"]
    with pytest.raises(StoreError, match=r"authentication failed \(401\)") as caught:
        OpenSearchStore.open(secured.url, INDEX, user="admin", password=wrong,
                             ca_certs=secured.ca)
    assert wrong not in str(caught.value)
    assert secured.passwords["admin"] not in str(caught.value)


def test_the_reader_searches_and_may_not_write(secured: SecuredCluster) -> None:
    with OpenSearchStore.open(secured.url, INDEX, user="reader",
                              password=secured.passwords["reader"], ca_certs=secured.ca) as store:
        result = search_text(store, "(and (term a:0) (nn m :k 2))",
                             {"m": np.array([1.0, 0.0, 0.5], np.float32)}, 10)
        assert result.ids == ["d0", "d2"]
        with pytest.raises(StoreError, match=r"permission denied|403") as caught:
            store.add([IndexDocument("intruder", {"a": ["0"]})])
        assert secured.passwords["reader"] not in str(caught.value)
    with OpenSearchStore.open(secured.url, INDEX, user="admin",
                              password=secured.passwords["admin"], ca_certs=secured.ca) as admin:
        assert admin.get_documents(["intruder"]) == [None]
        assert admin.stats().documents == len(DOCS)


def test_the_cli_works_over_tls_and_fails_cleanly_without_the_ca(
        secured: SecuredCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ebr.cli.main import cli

    monkeypatch.setenv("EBR_OPENSEARCH_USER", "admin")
    monkeypatch.setenv("EBR_OPENSEARCH_PASSWORD", secured.passwords["admin"])
    source = tmp_path / "more.jsonl"
    source.write_text('{"id": "cli-1", "a": "1", "m": [0.0, 1.0, 0.0]}\n')
    runner = CliRunner()
    done = runner.invoke(cli, ["ingest", str(source), "--store", secured.url, "--index", INDEX,
                               "--ca-certs", secured.ca, "--quiet",
                               "--checkpoint", str(tmp_path / "c")])
    assert done.exit_code == 0, done.output
    found = runner.invoke(cli, ["query", secured.url, "--index", INDEX, "--ca-certs", secured.ca,
                                "(term a:1)"])
    assert found.exit_code == 0 and "cli-1" in found.output, found.output
    doctor = runner.invoke(cli, ["doctor", "--store", secured.url, "--ca-certs", secured.ca])
    assert doctor.exit_code == 0, doctor.output
    refused = runner.invoke(cli, ["query", secured.url, "--index", INDEX, "(term a:1)"])
    assert refused.exit_code == 1 and "TLS failed" in refused.output
    assert "Traceback" not in refused.output
    assert secured.passwords["admin"] not in refused.output + done.output + found.output
    with OpenSearchStore.open(secured.url, INDEX, ca_certs=secured.ca) as store:
        store.delete(["cli-1"])


def test_the_reader_opens_the_index_metadata(secured: SecuredCluster) -> None:
    """PQ/OPQ tables and the encoder fingerprint written by the admin, read back by the
    read-only user (who may search the metadata index, not read mappings)."""
    schema = Schema.create("meta", keys=(EmbeddingKey("p", 4, CoarseQuantizerSpec(
        nlist=2, pq_m=2, opq=True)),))
    rng = np.random.default_rng(5)
    admin = {"user": "admin", "password": secured.passwords["admin"], "ca_certs": secured.ca}
    with OpenSearchStore.create(secured.url, "ebr-secured-meta", schema, engine="lucene",
                                **admin) as store:
        store.add([IndexDocument(f"p{i}", embeddings={"p": rng.standard_normal(4)})
                   for i in range(260)])
        store.train_quantizers()
        store.set_fingerprint("p", "cd" * 32)
        written = store.products["p"]
    try:
        with OpenSearchStore.open(secured.url, "ebr-secured-meta", user="reader",
                                  password=secured.passwords["reader"],
                                  ca_certs=secured.ca) as reader:
            assert reader.fingerprints == {"p": "cd" * 32}
            read = reader.products["p"]
            assert read.rotation is not None and written.rotation is not None
            np.testing.assert_array_equal(read.codebooks, written.codebooks)
            np.testing.assert_array_equal(read.rotation, written.rotation)
            np.testing.assert_array_equal(read.centroids, reader.quantizers["p"].centroids)
    finally:
        OpenSearchStore.drop(secured.url, "ebr-secured-meta", **admin)


def test_the_cli_asks_for_the_password_and_never_shows_it(
        secured: SecuredCluster, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from click.testing import CliRunner

    from ebr.cli import inputs
    from ebr.cli.main import cli

    password = secured.passwords["admin"]
    wrong = "not-" + password
    monkeypatch.delenv("EBR_OPENSEARCH_USER", raising=False)
    monkeypatch.delenv("EBR_OPENSEARCH_PASSWORD", raising=False)
    monkeypatch.setattr(inputs, "interactive", lambda: True)
    runner = CliRunner()
    base = ["--ca-certs", secured.ca]
    # --user on a terminal: the password is asked for, hidden
    asked = runner.invoke(cli, ["index", "stats", secured.url, "--index", INDEX, *base,
                                "--user", "admin"], input=password + "\n")
    assert asked.exit_code == 0, asked.output
    assert "Password for admin" in asked.stderr and f"documents  {len(DOCS)}" in asked.stdout
    # a wrong password from the environment: 401, then the user and password are asked for
    monkeypatch.setenv("EBR_OPENSEARCH_USER", "admin")
    monkeypatch.setenv("EBR_OPENSEARCH_PASSWORD", wrong)
    again = runner.invoke(cli, ["query", secured.url, "--index", INDEX, *base, "(term a:1)"],
                          input="\n" + password + "\n")
    assert again.exit_code == 0, again.output
    assert "authentication failed (401)" in again.stderr and "User [admin]" in again.stderr
    assert "d1" in again.stdout
    doctor = runner.invoke(cli, ["doctor", "--store", secured.url, *base, "--shards", "1"],
                           input="\n" + password + "\n")
    assert doctor.exit_code == 0 and "ebr works on this cluster" in doctor.stdout, doctor.output
    # no terminal: no prompt, a clean error
    monkeypatch.setattr(inputs, "interactive", lambda: False)
    refused = runner.invoke(cli, ["index", "stats", secured.url, "--index", INDEX, *base])
    assert refused.exit_code == 1 and "authentication failed (401)" in refused.stderr
    assert "Traceback" not in refused.output and "Password" not in refused.output
    for shown in (asked.output, again.output, doctor.output, refused.output, caplog.text):
        assert password not in shown and wrong not in shown
