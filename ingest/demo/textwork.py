"""Real CPU work of the demo agents — what the profiler measures.

Small, deterministic stand-ins for what agent code really spends CPU on: parsing a plan, ranking
search results by embedding similarity, and composing an answer (citation de-duplication, token
counting, markdown rendering). ``dedupe_citations`` is quadratic on purpose: it is the hotspot the
profile notebook finds (``difflib.SequenceMatcher`` for every pair of citations).
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re

_WORDS = [
    "agent",
    "latency",
    "token",
    "model",
    "vector",
    "index",
    "query",
    "cache",
    "retry",
    "budget",
    "trace",
    "span",
    "context",
    "provider",
    "tool",
    "search",
    "answer",
    "citation",
    "summary",
    "memory",
    "session",
    "tenant",
    "policy",
    "cost",
    "throughput",
    "percentile",
    "queue",
    "shard",
    "replica",
    "timeout",
    "fallback",
    "prompt",
    "embedding",
    "ranking",
    "recall",
    "precision",
    "window",
    "batch",
    "stream",
]
_TOKEN = re.compile(r"\w+|[^\w\s]")


def sentence(r: random.Random, words: int) -> str:
    """A pseudo-sentence of ``words`` words from the demo vocabulary."""
    return " ".join(r.choice(_WORDS) for _ in range(words)).capitalize() + "."


def snippets(r: random.Random, count: int) -> list[dict[str, str]]:
    """Search-result-like snippets: title, url, text; some near-duplicates of earlier ones."""
    out: list[dict[str, str]] = []
    for i in range(count):
        if out and r.random() < 0.3:
            base = r.choice(out)
            text = base["text"].replace(r.choice(_WORDS), r.choice(_WORDS), 1)
            out.append({"title": base["title"], "url": f"{base['url']}?ref={i}", "text": text})
            continue
        title = sentence(r, r.randint(3, 7))
        url = f"https://docs.example.com/{r.choice(_WORDS)}/{r.choice(_WORDS)}-{r.randint(1, 999)}"
        out.append(
            {"title": title, "url": url, "text": " ".join(sentence(r, r.randint(8, 12)) for _ in range(2))}
        )
    return out


def parse_plan(raw: str) -> list[dict[str, object]]:
    """Parse and validate the planner model's JSON plan."""
    plan = json.loads(raw)
    steps = plan["steps"]
    for step in steps:
        if not re.fullmatch(r"[a-z_]+", str(step["tool"])):
            msg = f"plan step {step!r} names an invalid tool"
            raise ValueError(msg)
        step["query"] = " ".join(_TOKEN.findall(str(step["query"])))
    return steps


def plan_json(r: random.Random, tools: list[str], question: str) -> str:
    """The planner model's reply: a JSON plan with one step per tool."""
    steps = [{"tool": t, "query": f"{question} {sentence(r, 4)}", "why": sentence(r, 10)} for t in tools]
    return json.dumps({"goal": question, "steps": steps, "notes": [sentence(r, 12) for _ in range(4)]})


def embed(text: str, dims: int = 48) -> list[float]:
    """A bag-of-hashed-words embedding (unit length)."""
    vector = [0.0] * dims
    for token in _TOKEN.findall(text.lower()):
        h = hash_token(token)
        vector[h % dims] += 1.0 if (h >> 8) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def hash_token(token: str) -> int:
    """A stable (not per-process salted) hash of a token."""
    h = 2166136261
    for ch in token.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def rank_results(query: str, results: list[dict[str, str]]) -> list[dict[str, object]]:
    """Rank results by cosine similarity of their embeddings to the query's."""
    q = embed(query)
    scored = [
        {**item, "score": round(cosine(q, embed(item["title"] + " " + item["text"])), 4)} for item in results
    ]
    return sorted(scored, key=lambda item: -float(item["score"]))  # type: ignore[arg-type]


def dedupe_citations(citations: list[dict[str, str]], threshold: float = 0.85) -> list[dict[str, str]]:
    """Drop citations whose text is nearly the same as an earlier one (quadratic: the known hotspot)."""
    kept: list[dict[str, str]] = []
    for citation in citations:
        if all(
            difflib.SequenceMatcher(None, citation["text"].split(), other["text"].split()).ratio() < threshold
            for other in kept
        ):
            kept.append(citation)
    return kept


def count_tokens(text: str) -> int:
    """Rough token count (words and punctuation), as a tokenizer-free estimate."""
    return len(_TOKEN.findall(text))


def render_markdown(question: str, paragraphs: list[str], citations: list[dict[str, str]]) -> str:
    """The final answer as markdown with numbered citations."""
    lines = [f"## {question}", ""]
    for i, paragraph in enumerate(paragraphs):
        refs = "".join(f"[{j + 1}]" for j in range(len(citations)) if (i + j) % 3 == 0)
        lines.append(f"{paragraph} {refs}".rstrip())
        lines.append("")
    lines.append("### Sources")
    lines.extend(f"{j + 1}. [{c['title']}]({c['url']})" for j, c in enumerate(citations))
    return "\n".join(lines)


def compose_answer(
    question: str, paragraphs: list[str], citations: list[dict[str, str]]
) -> dict[str, object]:
    """The writer's post-processing: de-duplicate citations, render, count tokens."""
    unique = dedupe_citations(citations)
    text = render_markdown(question, paragraphs, unique)
    return {
        "answer": text,
        "citations": len(unique),
        "dropped_citations": len(citations) - len(unique),
        "answer_tokens": count_tokens(text),
    }
