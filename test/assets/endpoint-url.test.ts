import { describe, expect, it } from "vitest";
import { endpointUrlProblem, redactUrl } from "../../src/assets/endpoint-url.js";

describe("endpointUrlProblem", () => {
  it.each([
    "http://127.0.0.1:8000/v1",
    "https://api.openai.com/v1",
    "HTTP://GPU-1:8000/v1",
    "http://[::1]:8000/v1",
    "http://gpu-box.internal/v1/",
  ])("accepts %s", (url) => {
    expect(endpointUrlProblem(url)).toBeNull();
  });

  it.each([
    ["localhost:1/v1", 'it has no scheme; write "http://localhost:1/v1"'],
    ["127.0.0.1:8000/v1", 'it has no scheme; write "http://127.0.0.1:8000/v1"'],
    ["gpu-box", 'it has no scheme; write "http://gpu-box"'],
    ["http:127.0.0.1:8000/v1", 'write "http://" before the host'],
    ["ftp://127.0.0.1/v1", 'its scheme "ftp" is not http or https'],
    ["ws://127.0.0.1:8000/v1", 'its scheme "ws" is not http or https'],
    ["file:///srv/model", 'its scheme "file" is not http or https'],
    ["javascript:alert(1)", 'its scheme "javascript" is not http or https'],
    ["http://", "it is not a URL"],
    ["http://127.0.0.1:99999/v1", "it is not a URL"],
    ["/v1", "it is a path, not a URL"],
    ["", "it is empty"],
    ["   ", "it is empty"],
    [" http://127.0.0.1:8000/v1", "it contains whitespace"],
    ["http://127.0.0.1:8000/v1\n", "it contains whitespace"],
    ["http://admin:hunter2@127.0.0.1/v1", "it has credentials in it"],
    ["http://sk-secret@127.0.0.1/v1", "it has credentials in it"],
    ["admin:hunter2@127.0.0.1:8000/v1", "it has credentials in it"],
    ["http://127.0.0.1/v1?api_key=sk-secret", "it has a query string"],
    ["http://127.0.0.1/v1#chat", "it has a #fragment"],
    [null, "it is null, not a string"],
    [8000, "it is a number, not a string"],
  ] as const)("refuses %j: %s", (url, reason) => {
    expect(endpointUrlProblem(url)).toContain(reason);
  });

  it("never repeats a credential or a query string", () => {
    for (const url of [
      "http://admin:hunter2@127.0.0.1/v1",
      "admin:hunter2@127.0.0.1:8000/v1",
      "http://127.0.0.1/v1?api_key=hunter2",
      "localhost:1/v1?api_key=hunter2",
    ]) {
      expect(endpointUrlProblem(url), url).not.toContain("hunter2");
    }
  });
});

describe("redactUrl", () => {
  it("hides user, password and query string, and keeps the rest", () => {
    expect(redactUrl("http://me:secret@gpu-1:8000/v1?key=sk-1")).toBe(
      "http://***@gpu-1:8000/v1?***",
    );
    expect(redactUrl("me:secret@gpu-1:8000/v1")).toBe("***@gpu-1:8000/v1");
    expect(redactUrl("http://127.0.0.1:8000/v1")).toBe("http://127.0.0.1:8000/v1");
  });
});
