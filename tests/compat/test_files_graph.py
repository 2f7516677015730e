"""Files in the graph (on the compat demo, whose files are under its data root): MS, calibration tables, UVH5 files and QA artefacts linked to groups,
images, jobs and data products, each link one SQL statement per level whatever N."""

from __future__ import annotations

from tests.graph.conftest import Graph

LINKS = """query($n: Int!) { groups(first: $n, filter: {states: [COMPLETED]}) { nodes {
  groupId
  measurementSets { path calTables { tableType dataProducts { dataId } qaArtifacts { name } }
                    dataProducts { dataId type children { dataId } } qaArtifacts { name } images { imageId } }
  uvhFiles { path subbandIdx }
  qaArtifacts { name }
  images { qaArtifacts { name } measurementSet { msId } }
  jobs { jobId outputs { dataId measurementSet { msId } calTable { setName } } }
} } }"""


async def test_file_links_are_batched(graph: Graph) -> None:
    counts = {}
    for n in (3, 40):
        with graph.statements.measure() as used:
            data = await graph.data(LINKS, n=n)
        counts[n] = used[0]
        assert len(data["groups"]["nodes"]) == n
    assert counts[3] == counts[40]


async def test_registered_rows_link_to_their_files(graph: Graph) -> None:
    found = await graph.data("""{ calTables(first: 3, filter: {statuses: ["active"]}) { nodes {
        path tableType sourceMs { path file { nRows calTables { name } } }
        file { tableType flaggedFraction perAntenna { antennaId ampMean } }
        dataProducts { type ancestors { type } } } } }""")
    tables = found["calTables"]["nodes"]
    assert {t["tableType"] for t in tables} == {"K", "BP", "GP"}
    for table in tables:
        assert table["file"]["tableType"] == table["tableType"]
        assert table["sourceMs"]["file"]["nRows"] > 0
        assert [p["type"] for p in table["dataProducts"]] == ["CALTABLE"]
        assert {"MS", "RAW"} <= {a["type"] for a in table["dataProducts"][0]["ancestors"]}
    uvh = await graph.data("""{ uvhFiles(first: 2) { totalCount nodes { path header { nAntennas subband
        phaseCenterDecDeg } group { groupId } } } }""")
    assert uvh["uvhFiles"]["totalCount"] % 16 == 0
    assert all(n["header"]["nAntennas"] == 6 for n in uvh["uvhFiles"]["nodes"])


async def test_files_not_on_disk_read_as_null(graph: Graph) -> None:
    found = await graph.data("{ measurementSets(first: 50) { nodes { path file { nRows } } } }")
    on_disk = [n for n in found["measurementSets"]["nodes"] if n["file"] is not None]
    assert 0 < len(on_disk) < 50  # the demo writes a few real MS; the rest are records


async def test_bad_input_is_a_client_error(graph: Graph) -> None:
    for document in (
        '{ msFile(path: "/etc/passwd") { nRows } }',
        '{ msFile(path: "a/../b") { nRows } }',
        '{ qaDirectory(path: "/") { total } }',
        '{ dataProduct(dataId: "x") { ancestors(depth: 99) { dataId } } }',
    ):
        result = await graph.run(document)
        assert result.errors and result.errors[0].extensions["code"] in (
            "NOT_FOUND",
            "BAD_PATH",
            "BAD_USER_INPUT",
        )
