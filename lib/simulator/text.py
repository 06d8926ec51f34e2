"""The simulator's "model": deterministic answers, a tokenizer and Dify's usage block.

Answers are several sentences that visibly respond to the query and the inputs, written in the
query's script (a Thai query gets a Thai answer), and the same for the same seed and request.
"""
from __future__ import annotations

import hashlib
import random
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict

# Pieces as a model streams them: a word with its leading space, or one or two characters of a
# script without spaces (Thai, CJK) or of punctuation and emoji. "".join(tokenize(s)) == s.
_PIECE = re.compile(r"\s*(?:[A-Za-z0-9\u00C0-\u024F'’]+|[^\sA-Za-z0-9\u00C0-\u024F'’]{1,2})|\s+")


def tokenize(text: str) -> list[str]:
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def detect_script(text: str) -> str:
    """The dominant writing system of `text`: thai, japanese, chinese or latin (the default)."""
    counts = {"thai": 0, "japanese": 0, "chinese": 0, "latin": 0}
    for ch in text[:4000]:
        o = ord(ch)
        if 0x0E00 <= o <= 0x0E7F:
            counts["thai"] += 1
        elif 0x3040 <= o <= 0x30FF:
            counts["japanese"] += 1
        elif 0x4E00 <= o <= 0x9FFF:
            counts["chinese"] += 1
        elif ch.isalpha() and o < 0x0250:
            counts["latin"] += 1
    if counts["japanese"]:
        counts["japanese"] += counts["chinese"]  # kanji inside Japanese text
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "latin"


class Phrases(TypedDict):
    """One script's answer pieces: format strings, the bank of sentences to sample, the separator."""

    asked: str
    intro: str
    inputs: str
    no_inputs: str
    files: str
    turn: str
    bank: list[str]
    sep: str


_PHRASES: dict[str, Phrases] = {
    "latin": {
        "asked": 'You asked: "{q}".',
        "intro": "Here is a simulated answer from {app}, so the console works without a Dify account.",
        "inputs": "I took your inputs into account: {kv}.",
        "no_inputs": "No input variables were set for this request.",
        "files": "You attached {n} file(s): {names}.",
        "turn": "This is turn {n} of our conversation, and I remember the earlier ones.",
        "bank": [
            "The key point is that streaming lets you read the first words long before the answer is complete.",
            "A real model would weigh several options here; this one keeps its answer short and predictable.",
            "Ask the same question again with the same seed and you will get exactly this text.",
            "Latency, token counts and prices in this answer follow the simulator's model, so the charts have real data to show.",
            "Try a follow-up question to see how the conversation keeps its context.",
            "In practice you would check this against your own data before relying on it.",
            "Short, concrete prompts usually get faster and cheaper answers than long, vague ones.",
            "If something looks slow, the benchmark page can tell you whether it is the first token or the whole answer.",
        ],
        "sep": " ",
    },
    "thai": {
        "asked": "คุณถามว่า “{q}”",
        "intro": "นี่คือคำตอบจำลองจาก {app} เพื่อให้คุณใช้คอนโซลได้โดยไม่ต้องมีบัญชี Dify",
        "inputs": "ฉันใช้ข้อมูลที่คุณกรอกไว้แล้ว: {kv}",
        "no_inputs": "คำขอนี้ไม่มีตัวแปรอินพุต",
        "files": "คุณแนบไฟล์มา {n} ไฟล์: {names}",
        "turn": "นี่คือรอบที่ {n} ของบทสนทนา และฉันยังจำรอบก่อนหน้าได้",
        "bank": [
            "ประเด็นสำคัญคือการสตรีมทำให้คุณอ่านคำแรกได้ก่อนที่คำตอบจะเสร็จสมบูรณ์",
            "โมเดลจริงจะพิจารณาหลายทางเลือก แต่โมเดลจำลองนี้ตอบสั้นและคาดเดาได้",
            "ถ้าถามคำถามเดิมด้วยค่า seed เดิม คุณจะได้ข้อความนี้ทุกครั้ง",
            "เวลาแฝง จำนวนโทเค็น และราคาในคำตอบนี้มาจากแบบจำลองของซิมูเลเตอร์",
            "ลองถามคำถามต่อเนื่องเพื่อดูว่าบทสนทนาจำบริบทได้อย่างไร",
            "ในการใช้งานจริง คุณควรตรวจสอบกับข้อมูลของคุณเองก่อนเสมอ",
            "คำสั่งที่สั้นและชัดเจนมักได้คำตอบที่เร็วกว่าและถูกกว่า",
        ],
        "sep": " ",
    },
    "chinese": {
        "asked": "你问的是：“{q}”。",
        "intro": "这是来自 {app} 的模拟回答，没有 Dify 账号也能使用控制台。",
        "inputs": "我已考虑你填写的输入：{kv}。",
        "no_inputs": "这次请求没有设置输入变量。",
        "files": "你附加了 {n} 个文件：{names}。",
        "turn": "这是我们对话的第 {n} 轮，我记得之前的内容。",
        "bank": [
            "关键在于流式输出让你在回答完成之前就能读到第一个字。",
            "真实的模型会权衡多种选择，这个模拟模型的回答简短且可预测。",
            "用同一个种子再问一次，你会得到完全相同的文字。",
            "这个回答的延迟、词元数量和价格都来自模拟器的模型。",
            "试着继续追问，看看对话如何保留上下文。",
        ],
        "sep": "",
    },
    "japanese": {
        "asked": "ご質問は「{q}」ですね。",
        "intro": "これは {app} からの模擬回答です。Dify のアカウントがなくてもコンソールを試せます。",
        "inputs": "入力値を考慮しました：{kv}。",
        "no_inputs": "このリクエストには入力変数がありません。",
        "files": "{n} 件のファイルが添付されました：{names}。",
        "turn": "これは会話の {n} 回目で、前の内容も覚えています。",
        "bank": [
            "ストリーミングのおかげで、回答が終わる前に最初の言葉を読めます。",
            "本物のモデルは複数の選択肢を検討しますが、この模擬モデルは短く予測可能に答えます。",
            "同じシードで同じ質問をすると、まったく同じ文章が返ります。",
            "この回答のレイテンシ、トークン数、価格はシミュレーターのモデルに基づいています。",
            "続けて質問すると、会話が文脈を保つ様子を確認できます。",
        ],
        "sep": "",
    },
}


def _excerpt(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_rng(seed: int, *parts: str) -> random.Random:
    """A Random seeded from the simulator seed and the request's content: same request, same answer."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def write_answer(
    *,
    seed: int,
    app_name: str,
    query: str,
    inputs: dict | None = None,
    file_names: list[str] | None = None,
    turn: int = 1,
    sentences: int = 3,
) -> str:
    """Several sentences that respond to `query` and `inputs`, in the query's script."""
    inputs = {k: v for k, v in (inputs or {}).items() if v not in (None, "", [])}
    basis = query or " ".join(str(v) for v in inputs.values())
    phrases = _PHRASES[detect_script(basis)]
    rng = request_rng(seed, app_name, query, repr(sorted(inputs.items(), key=str)), str(turn))
    out = []
    if query:
        out.append(phrases["asked"].format(q=_excerpt(query)))
    out.append(phrases["intro"].format(app=app_name))
    if inputs:
        kv = ", ".join(f"{k} = {_excerpt(str(v), 40)}" for k, v in inputs.items())
        out.append(phrases["inputs"].format(kv=kv))
    elif not query:
        out.append(phrases["no_inputs"])
    if file_names:
        out.append(phrases["files"].format(n=len(file_names), names=", ".join(file_names)))
    if turn > 1:
        out.append(phrases["turn"].format(n=turn))
    out.extend(rng.sample(phrases["bank"], k=min(sentences, len(phrases["bank"]))))
    return phrases["sep"].join(out)


def suggested_questions(query: str) -> list[str]:
    """Three follow-ups in the query's script."""
    topic = _excerpt(query, 40)
    if detect_script(query) == "thai":
        return [f"ช่วยอธิบาย “{topic}” ให้ละเอียดขึ้นได้ไหม", "มีตัวอย่างประกอบไหม", "สรุปเป็นข้อ ๆ ให้หน่อย"]
    return [f'Can you explain "{topic}" in more detail?', "Can you give an example?", "Can you summarise that as a list?"]


# Prices as Dify reports them: unit price per `price_unit` (0.001 => per 1K tokens), decimal strings.
PROMPT_UNIT_PRICE = Decimal("0.0015")
COMPLETION_UNIT_PRICE = Decimal("0.002")
PRICE_UNIT = Decimal("0.001")
_Q = Decimal("0.0000001")


def usage_block(prompt_tokens: int, completion_tokens: int, latency_s: float,
                time_to_first_token: float = 0.0, time_to_generate: float = 0.0) -> dict:
    """Dify's `metadata.usage`: token counts as ints, prices as decimal strings, latency and timings in seconds."""
    prompt_price = (PROMPT_UNIT_PRICE * PRICE_UNIT * prompt_tokens).quantize(_Q, ROUND_HALF_UP)
    completion_price = (COMPLETION_UNIT_PRICE * PRICE_UNIT * completion_tokens).quantize(_Q, ROUND_HALF_UP)
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": str(PROMPT_UNIT_PRICE),
        "prompt_price_unit": str(PRICE_UNIT),
        "prompt_price": str(prompt_price),
        "completion_tokens": completion_tokens,
        "completion_unit_price": str(COMPLETION_UNIT_PRICE),
        "completion_price_unit": str(PRICE_UNIT),
        "completion_price": str(completion_price),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": str(prompt_price + completion_price),
        "currency": "USD",
        "latency": round(latency_s, 6),
        "time_to_first_token": round(time_to_first_token, 3),
        "time_to_generate": round(time_to_generate, 3),
    }
