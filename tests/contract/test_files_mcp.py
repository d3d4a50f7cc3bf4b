"""Files through MCP's own features, with the official client: the `file://` resource template,
and the client's MCP Roots narrowing what the file tools show (never widening it), in both
protocol eras: a legacy session is asked with roots/list, a 2026-07-28 call gets an
InputRequiredResult that the client's driver answers."""

from __future__ import annotations

import pytest
from mcp import StdioServerParameters, types
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from rawclient import bearer, modern_call
from sdk import connect
from servers import create_token, make_config, server_env, start_server
from waiting import wait_until_async

# Roots are deprecated as of 2026-07-28 and the client says so each time; that is expected here.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:The roots capability is deprecated")]

SECRET = "sm-outside-secret-51d0"

# "auto" probes server/discover and settles on 2026-07-28 with this server.
MODES = ["legacy", "auto"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "logs").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "logs" / "app.log").write_text("start\nERROR disk full\n")
    (root / "other" / "private.txt").write_text(SECRET + "\n")
    (root / ".env").write_text("PASSWORD=hunter2\n")
    (root / "big.txt").write_text("x" * 300_000)
    # Inside the client's root, pointing elsewhere inside the server's root (relative, so the
    # kernel's confinement to the server's root lets them through).
    (root / "logs" / "sneaky").symlink_to("../other/private.txt")
    (root / "logs" / "sneaky-dir").symlink_to("../other")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    return root, config


def client(binary, config, mode, roots=None):
    params = StdioServerParameters(command=str(binary), args=["serve", "--config", str(config)], env=server_env())
    callback = None
    if roots is not None:

        async def callback(context):
            if isinstance(roots, types.ErrorData):
                return roots
            return types.ListRootsResult(roots=[types.Root(uri=uri) for uri in roots])

    return Client(params, mode=mode, list_roots_callback=callback)


def text(result) -> str:
    return result.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_files_are_resources_under_the_same_rules(binary, tree, mode):
    root, config = tree
    async with client(binary, config, mode) as mcp:
        assert mcp.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert mcp.server_capabilities.resources is not None
        templates = (await mcp.list_resource_templates()).resource_templates
        log = await mcp.read_resource(f"file://{root}/logs/app.log")
        big = await mcp.read_resource(f"file://{root}/big.txt")
        errors = {}
        for name, uri in {
            "missing": f"file://{root}/nope.txt",
            "outside": f"file://{root.parent}/elsewhere.txt",
            "denied": f"file://{root}/.env",
            "escape": f"file://{root}/../{root.name}/other/../../x",
            "not_file": "https://example.com/x",
            "directory": f"file://{root}/logs",
        }.items():
            with pytest.raises(MCPError) as raised:
                await mcp.read_resource(uri)
            errors[name] = raised.value.error
    assert [(t.uri_template, t.mime_type) for t in templates] == [("file:///{+path}", "text/plain")]
    assert [c.text for c in log.contents] == ["start\nERROR disk full\n"]
    assert log.contents[0].uri == f"file://{root}/logs/app.log"
    # Cut so the answer fits limits.max_output_bytes (64 KiB by default), and says so.
    cut = big.contents[0]
    assert 16_000 < len(cut.text) < 32_768 and cut.text == "x" * len(cut.text)
    assert cut.meta["truncated"]["size_bytes"] == 300_000 and cut.meta["truncated"]["bytes_returned"] == len(cut.text)
    assert cut.meta["truncated"]["hint"] == f"this is the start of the file; files_read with offset {len(cut.text)} reads on"
    # 2026-07-28 moved "resource not found" from -32002 to -32602 (Invalid Params).
    assert errors["missing"].code == (-32002 if mode == "legacy" else -32602) and errors["missing"].message == f"`{root}/nope.txt` does not exist"
    assert errors["outside"].code == -32602 and "is outside the file roots" in errors["outside"].message
    assert errors["denied"].code == -32602 and "is on the deny list (`**/.env`)" in errors["denied"].message
    assert errors["escape"].code == -32602 and "leads outside its root" in errors["escape"].message
    assert errors["not_file"].code == -32602 and "is not a file:// URI of this host" in errors["not_file"].message
    assert errors["directory"].code == -32602 and "is a directory" in errors["directory"].message
    assert all(SECRET not in error.message for error in errors.values())


async def test_no_roots_no_resources(binary):
    params = StdioServerParameters(command=str(binary), args=["serve"], env=server_env())
    async with Client(params, mode="legacy") as mcp:
        assert mcp.server_capabilities.resources is None
        with pytest.raises(MCPError) as raised:
            await mcp.list_resource_templates()
    assert raised.value.error.code == -32601


async def test_resources_over_http_follow_the_callers_role(binary, tree):
    root, _ = tree
    server = start_server(binary, "--http", "127.0.0.1:0", config=f'[files]\nroots = ["{root}"]\n[roles.blind]\ntiers = ["read"]\ndeny = ["files_*"]\n', role="viewer")
    try:
        async with connect("http", binary, server.url, None, server.token) as session:
            await session.initialize()
            read = await session.read_resource(f"file://{root}/logs/app.log")
        blind = create_token(binary, server.config, name="blind", role="blind")
        # The server rereads its token file within a second: until then the token is unknown.
        await wait_until_async(lambda: modern_call(server.url, "system_overview", {}, 1, bearer(blind)).status == 200, interval=0.1)
        async with connect("http", binary, server.url, None, blind) as session:
            await session.initialize()
            templates = (await session.list_resource_templates()).resource_templates
            with pytest.raises(MCPError) as raised:
                await session.read_resource(f"file://{root}/logs/app.log")
    finally:
        assert server.stop() == 0
    assert read.contents[0].text == "start\nERROR disk full\n"
    assert templates == []
    assert raised.value.error.code == -31403 and "files_read" in raised.value.error.message


@pytest.mark.parametrize("mode", MODES)
async def test_client_roots_narrow_the_file_roots(binary, tree, mode):
    root, config = tree
    async with client(binary, config, mode, roots=[f"file://{root}/logs", f"file://{root.parent}/not-served"]) as mcp:
        inside = await mcp.call_tool("files_read", {"path": f"{root}/logs/app.log"})
        search = await mcp.call_tool("files_search", {"path": f"{root}/logs", "content": "ERROR"})
        as_resource = await mcp.read_resource(f"file://{root}/logs/app.log")
        refused = {
            name: await mcp.call_tool(tool, arguments)
            for name, (tool, arguments) in {
                "sibling": ("files_read", {"path": f"{root}/other/private.txt"}),
                "parent": ("files_list", {"path": str(root)}),
                "dotdot": ("files_read", {"path": f"{root}/logs/../other/private.txt"}),
                "symlink": ("files_read", {"path": f"{root}/logs/sneaky"}),
                "symlinked_dir": ("files_list", {"path": f"{root}/logs/sneaky-dir"}),
                "through_symlinked_dir": ("files_stat", {"path": f"{root}/logs/sneaky-dir/private.txt"}),
                # A client root the server does not serve widens nothing.
                "not_served": ("files_list", {"path": f"{root.parent}/not-served"}),
            }.items()
        }
        # Not a file tool: never narrowed, never asks.
        overview = await mcp.call_tool("system_overview", {})
    assert inside.is_error is False and inside.structured_content["content"] == "start\nERROR disk full\n"
    assert [hit["line"] for hit in search.structured_content["results"]] == [2]
    assert as_resource.contents[0].text == "start\nERROR disk full\n"
    assert all(result.is_error for result in refused.values()), {k: text(v) for k, v in refused.items()}
    outside = f"is outside the client's roots ({root}/logs, {root.parent}/not-served); the client narrowed what this server may show"
    assert text(refused["sibling"]) == f"`{root}/other/private.txt` {outside}"
    assert text(refused["parent"]) == f"`{root}` {outside}"
    assert text(refused["dotdot"]) == f"`{root}/logs/../other/private.txt` goes through `..`; with the client's roots in force, name the path without it"
    assert text(refused["symlink"]) == f"`{root}/logs/sneaky` {outside}"
    assert text(refused["symlinked_dir"]) == f"`{root}/logs/sneaky-dir` {outside}"
    assert text(refused["through_symlinked_dir"]) == f"`{root}/logs/sneaky-dir/private.txt` {outside}"
    assert "is outside the file roots" in text(refused["not_served"])
    assert all(SECRET not in text(result) for result in refused.values())
    assert overview.is_error is False


async def test_a_legacy_client_that_changes_its_roots_is_asked_again(binary, tree):
    root, config = tree
    roots = [f"file://{root}/logs"]
    async with client(binary, config, "legacy", roots=roots) as mcp:
        before = await mcp.call_tool("files_read", {"path": f"{root}/other/private.txt"})
        roots[:] = [f"file://{root}/other"]
        still_cached = await mcp.call_tool("files_read", {"path": f"{root}/other/private.txt"})
        await mcp.send_roots_list_changed()
        after = None
        for _ in range(50):  # the notification and the next call race; the server handles them in order of arrival
            after = await mcp.call_tool("files_read", {"path": f"{root}/other/private.txt"})
            if not after.is_error:
                break
    assert before.is_error and "outside the client's roots" in text(before)
    assert still_cached.is_error, "roots are kept until the client says they changed"
    assert after.is_error is False and after.structured_content["content"] == SECRET + "\n"


async def test_roots_that_cannot_be_read_show_nothing(binary, tree):
    """A legacy client whose roots/list fails sees no file (a 2026-07-28 client's driver raises
    its callback's error itself and never retries; a malformed inputResponses is refused the
    same way, in src/mcp/roots.rs's tests)."""
    root, config = tree
    failing = types.ErrorData(code=types.INTERNAL_ERROR, message="the roots picker crashed")
    async with client(binary, config, "legacy", roots=failing) as mcp:
        result = await mcp.call_tool("files_read", {"path": f"{root}/logs/app.log"})
        listing = await mcp.call_tool("files_list", {"path": str(root)})
    assert result.is_error and listing.is_error
    assert text(result) == "the client declared MCP Roots but they could not be read (roots/list failed: Mcp error: -32603: the roots picker crashed); no file is visible until they can"
