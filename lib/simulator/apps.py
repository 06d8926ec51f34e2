"""The simulator's demo apps (one of each Dify mode, and a judge), and what /info, /parameters, /meta, /site say."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    """One node of a demo app's graph, as its node events name it."""

    id: str
    type: str
    title: str


# The Template node both workflow-based apps run after their LLM: the node the node-failed fault fails, with
# the id, type and title of the failing node in captures 71-74 (a Template Transform needs Dify's code sandbox).
TEMPLATE = Node("tmpl", "template-transform", "Template")
CHATFLOW_GRAPH = (Node("start", "start", "Start"), Node("knowledge", "knowledge-retrieval", "Knowledge Retrieval"),
                  Node("llm", "llm", "LLM"), TEMPLATE, Node("answer", "answer", "Answer"))
WORKFLOW_GRAPH = (Node("start", "start", "Start"), Node("llm", "llm", "LLM"), TEMPLATE, Node("end", "end", "End"))


def listed(graph: tuple[Node, ...]) -> str:
    """"Start, LLM, Template and End": the graph's node titles in order, for an app's description."""
    titles = [n.title for n in graph]
    return ", ".join(titles[:-1]) + " and " + titles[-1]


@dataclass(frozen=True)
class SimApp:
    key: str
    id: str
    mode: str  # Dify's App.mode: chat, advanced-chat, agent-chat, completion, workflow
    name: str
    description: str
    input_form: list[dict]
    opening_statement: str | None = None
    suggested_questions: tuple[str, ...] = ()
    suggested_after_answer: bool = False
    speech_to_text: bool = False
    text_to_speech: bool = False
    retriever_resource: bool = False
    file_upload: bool = False
    workflow_id: str | None = None  # the published workflow (advanced-chat, workflow)
    tags: tuple[str, ...] = field(default_factory=tuple)
    graph: tuple[Node, ...] = ()  # the nodes every run goes through, in order (workflow-based apps)
    grades: bool = False  # answers lib.evals' grading prompt with a verdict (lib/simulator/grader.py)

    @property
    def is_chat_family(self) -> bool:
        return self.mode in ("chat", "agent-chat", "advanced-chat")

    @property
    def is_workflow_based(self) -> bool:
        return self.mode in ("advanced-chat", "workflow")

    def info(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "mode": self.mode,
            "author_name": "Dify Console simulator",
        }

    def parameters(self, newer_fields: bool = True) -> dict:
        """GET /parameters. Workflow-based apps answer from their workflow's features, basic apps from the
        model config, so the two families differ in shape as a real Dify 1.12 shows (captures 02, 50, 75, 78)."""
        upload_types = ["image", "document"] if self.file_upload else []
        workflow = self.is_workflow_based
        if workflow:
            tts = {"enabled": self.text_to_speech, "language": "", "voice": ""}
        else:
            tts = {"enabled": self.text_to_speech}
        if self.text_to_speech:
            tts.update(voice="alloy", language="en-US", autoPlay="disabled")
        image = {"enabled": self.file_upload and not workflow, "number_limits": 3, "detail": "high",
                 "transfer_methods": ["remote_url", "local_file"]}
        if workflow:
            file_upload = {"allowed_file_extensions": [], "allowed_file_types": upload_types,
                           "allowed_file_upload_methods": ["local_file", "remote_url"], "enabled": self.file_upload,
                           "fileUploadConfig": dict(FILE_UPLOAD_CONFIG), "number_limits": 3}
        elif self.file_upload:
            file_upload = {"image": image, "enabled": True, "allowed_file_types": upload_types,
                           "allowed_file_extensions": [], "allowed_file_upload_methods": ["remote_url", "local_file"],
                           "number_limits": 3}
        else:
            file_upload = {"image": image}  # a basic app without uploads has only the legacy switch
        opening = self.opening_statement if self.opening_statement is not None or not workflow else ""
        return {
            "opening_statement": opening,
            "suggested_questions": list(self.suggested_questions),
            "suggested_questions_after_answer": {"enabled": self.suggested_after_answer},
            "speech_to_text": {"enabled": self.speech_to_text},
            "text_to_speech": tts,
            "retriever_resource": {"enabled": self.retriever_resource},
            "annotation_reply": {"enabled": False},
            "more_like_this": {"enabled": False},
            "user_input_form": [_public_field(item, workflow, newer_fields) for item in self.input_form],
            "sensitive_word_avoidance": {"enabled": False} if workflow else {"enabled": False, "type": "", "configs": []},
            "file_upload": file_upload,
            "system_parameters": {
                "image_file_size_limit": 10,
                "video_file_size_limit": 100,
                "audio_file_size_limit": 50,
                "file_size_limit": 15,
                "workflow_file_upload_limit": 10,
            },
        }

    def site(self) -> dict:
        return {
            "title": self.name,
            "chat_color_theme": None,
            "chat_color_theme_inverted": False,
            "icon_type": "emoji",
            "icon": "🤖",
            "icon_background": "#E0F2FE",
            "icon_url": None,
            "description": None,  # the site's own description, unset unless edited (capture 04)
            "copyright": None,
            "privacy_policy": None,
            "custom_disclaimer": "",
            "default_language": "en-US",
            "show_workflow_steps": self.is_workflow_based,
            "use_icon_as_answer_icon": False,
        }

    def meta(self) -> dict:
        if self.mode != "agent-chat":
            return {"tool_icons": {}}
        return {
            "tool_icons": {
                "web_search": {"background": "#FEF3C7", "content": "🔎"},
                "calculator": {"background": "#E0F2FE", "content": "🧮"},
            }
        }


FILE_UPLOAD_CONFIG = {"audio_file_size_limit": 50, "batch_count_limit": 5, "file_size_limit": 15,
                      "image_file_size_limit": 10, "video_file_size_limit": 100, "workflow_file_upload_limit": 10}


def _public_field(item: dict, workflow: bool, newer_fields: bool) -> dict:
    """A form control as /parameters shows it: a workflow's Start variables carry `type` and `options`, and
    no empty `default`; `hint` and `placeholder` are newer than 1.12."""
    ((control, spec),) = copy.deepcopy(item).items()
    if workflow:
        spec.setdefault("options", [])
        if spec.get("default") in ("", None):
            spec.pop("default", None)
        if not newer_fields:
            spec.pop("hint", None)
            spec.pop("placeholder", None)
    return {control: spec}


def _field(control: str, variable: str, label: str, *, required: bool, workflow: bool = False, **extra) -> dict:
    inner = {"label": label, "variable": variable, "required": required, "default": extra.pop("default", "")}
    inner.update(extra)
    if workflow:
        inner.setdefault("type", control)
        inner.setdefault("hint", "")
        inner.setdefault("placeholder", "")
    return {control: inner}


TONES = ["Friendly", "Formal", "Concise"]
AUDIENCES = ["Engineers", "Executives", "Students"]
STYLES = ["Blog post", "Tweet", "Summary"]

APPS: dict[str, SimApp] = {
    app.key: app
    for app in [
        SimApp(
            key="app-sim-chat",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c01",
            mode="chat",
            name="Simulated Chatbot",
            description="A chat app (Chatbot mode) answering from the simulator's model.",
            input_form=[
                _field("text-input", "name", "Your name", required=False, max_length=48),
                _field("select", "tone", "Tone", required=False, options=TONES, default="Friendly"),
            ],
            opening_statement="Hi! I'm a simulated Dify chatbot. Ask me anything: "
                              "I answer in your language, and every answer shows its latency and cost.",
            suggested_questions=("What can you do?", "Explain streaming in one paragraph.", "สวัสดีครับ คุณช่วยอะไรได้บ้าง"),
            suggested_after_answer=True,
            speech_to_text=True,
            text_to_speech=True,
            retriever_resource=True,
            file_upload=True,
            tags=("simulator", "chat"),
        ),
        SimApp(
            key="app-sim-advanced-chat",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c02",
            mode="advanced-chat",
            name="Simulated Chatflow",
            description=f"An advanced-chat app (Chatflow): a {listed(CHATFLOW_GRAPH)} node graph.",
            input_form=[
                _field("text-input", "topic", "Topic", required=False, workflow=True, max_length=100),
                _field("select", "audience", "Audience", required=False, workflow=True, options=AUDIENCES, default="Engineers"),
            ],
            opening_statement="Hello from the simulated Chatflow. Each answer runs through a small node graph you can inspect.",
            suggested_questions=("How does a chatflow differ from a chatbot?", "Summarise our talk so far."),
            suggested_after_answer=True,
            retriever_resource=True,
            file_upload=True,
            workflow_id="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c02",
            graph=CHATFLOW_GRAPH,
            tags=("simulator", "chatflow"),
        ),
        SimApp(
            key="app-sim-agent",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c03",
            mode="agent-chat",
            name="Simulated Agent",
            description="An agent app that thinks, calls a tool, then answers. Streaming only, as in Dify.",
            input_form=[_field("paragraph", "goal", "Goal", required=False, max_length=2000)],
            opening_statement="I'm a simulated agent: I show my thoughts and tool calls before I answer.",
            suggested_questions=("Search the web for Dify release notes.", "What is 17 * 23?"),
            tags=("simulator", "agent"),
        ),
        SimApp(
            key="app-sim-completion",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c04",
            mode="completion",
            name="Simulated Text Generator",
            description="A completion app (Text Generator) that writes from a topic and a style.",
            input_form=[
                _field("text-input", "topic", "Topic", required=True, max_length=200),
                _field("select", "style", "Style", required=True, options=STYLES, default="Summary"),
                _field("number", "words", "Approximate words", required=False, default=60),
                _field("paragraph", "query", "Extra instructions", required=False, max_length=4000),
            ],
            tags=("simulator", "completion"),
        ),
        SimApp(
            key="app-sim-workflow",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c05",
            mode="workflow",
            name="Simulated Workflow",
            description=f"A workflow app: {listed(WORKFLOW_GRAPH)} nodes producing a `text` output.",
            input_form=[
                _field("text-input", "topic", "Topic", required=True, workflow=True, max_length=200),
                _field("select", "audience", "Audience", required=False, workflow=True, options=AUDIENCES, default="Engineers"),
                _field("paragraph", "details", "Details", required=False, workflow=True, max_length=4000),
                _field("number", "max_points", "Max points", required=False, workflow=True, default=3),
            ],
            workflow_id="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c05",
            graph=WORKFLOW_GRAPH,
            file_upload=True,
            tags=("simulator", "workflow"),
        ),
        SimApp(
            key="app-sim-judge",
            id="5f0c2c1e-7d0a-4a53-9a6e-0c1a3e2b7c06",
            mode="chat",
            name="Simulated Judge",
            description="A chat app that grades lib.evals' judge prompts by a fixed rule (a stand-in, not a "
                        "model): PASS when the answer contains every phrase the rubric quotes.",
            input_form=[],
            opening_statement="I grade eval answers: PASS when the answer contains every phrase the rubric quotes.",
            grades=True,
            tags=("simulator", "judge"),
        ),
    ]
}

APPS_BY_ID = {app.id: app for app in APPS.values()}
