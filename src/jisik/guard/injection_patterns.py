"""The rule table of :mod:`jisik.guard.injection`: each pattern family, in Korean and English (and a few
other languages), with its base score, the words that must be present for it to run, and what a match covers.

Scores come in three bands: about 0.8 for phrasings benign text never uses, 0.55–0.75 for strong signals, and
0.15–0.45 for weak ones that count only with support (words addressing an AI, a strong finding nearby).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


# -- the pattern families --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    score: float
    needles: tuple[str, ...]  # the rule runs only on a text holding one of these (lower case): saves time
    pattern: re.Pattern[str]
    span: str                 # what a finding covers: "sentence" (and an order after it), "line" or "paragraph"
    checks: str               # n: negation or purpose lowers, m: a Korean statement lowers, a: words addressing
    #                           an AI raise, d: a document talking about its own instructions lowers
    groups: tuple[tuple[str, float], ...]  # named groups that raise the score when they matched
    boost: re.Pattern[str] | None
    by: float


_RULES: list[_Rule] = []
_ML = re.IGNORECASE | re.MULTILINE


def _rule(kind: str, score: float, needles: str, pattern: str, *, span: str = "sentence", checks: str = "",
          groups: dict[str, float] | None = None, boost: str | None = None, by: float = 0.2,
          flags: int = re.IGNORECASE) -> None:
    _RULES.append(_Rule(kind, score, tuple(needles.split()), re.compile(pattern, flags), span, checks,
                        tuple((groups or {}).items()), re.compile(boost, re.IGNORECASE) if boost else None, by))


_W = r"[\w'’-]+"
_LEAD = r"^[ \t>*#_=|~-]{0,8}"
_AI = re.compile(r"\b(?:ai|a\.i\.|llms?|(?:large\s+)?language\s+models?|chat\s?bots?|assistants?|gpt-?\w*|chatgpt|"
                 r"claude|gemini|copilot|ai\s+(?:models?|agents?))\b|(?-i:(?<![A-Za-z])AI(?![a-z]))|인공지능|챗봇|"
                 r"어시스턴트|언어\s*모델|(?<![가-힣])(?:너는|넌|너의|네가|니가|너도)", re.IGNORECASE)
_URL = r"https?://|www\.|\b[\w-]{1,63}\.(?:com|net|org|io|xyz|ru|cn|kr|top|info|site|link|click)\b|bit\.ly"
_PERSONA = (r"\b(?:DAN|jailbr\w*|unrestricted|unfiltered|uncensored|unlimited|evil|malicious|rogue|hacker|free\s+"
            r"(?:from|of)|not\s+bound|no\s+longer\s+(?:bound|restricted)|without\s+(?:any\s+)?(?:restrictions|rules|"
            r"limits|filters|guidelines|ethics|censorship)|no\s+(?:restrictions|rules|limits|filters)|(?:admin|"
            r"developer|god|root|debug|sudo)\s+mode|persona|character|do\s+anything|answer\s+anything)")
_PERSONA_KO = (r"DAN|탈옥|제한\s*(?:이|을|도)?\s*(?:없|해제|풀)|규칙\s*(?:이|을|에)?\s*(?:없|얽매이지|구애)|"
               r"(?:필터|검열)\s*(?:가|를|이|을)?\s*(?:없|해제)|무엇이든|뭐든지?|윤리|악당|해커|관리자\s*권한|캐릭터|페르소나")
_CUE = (r"\b(?:you|your|ignore|must|always|never|only|from\s+now|respond|answer|reply|act|pretend|obey|reveal|"
        r"do\s+not|stop|say|do\s+what)\b|너|당신|무시|답하|대답|응답|하세요|해라|하라|십시오|따르")
_TO_AI = (r"\b(?:you|your|the\s+user|users|answer|respond|reply|ignore|assistant)\b|너|당신|사용자에게|답변|답하|대답|"
          r"응답|무시|AI")
_SECRET = (r"\b(?:passwords?|api\s+keys?|secret\s+keys?|credentials|system\s+prompt)\b|비밀번호|API\s*키|"
           r"시스템\s*프롬프트")
_KO_TELL = r"(?:보여|출력|알려|공개|말해|적어|복사|유출|노출|반복|읽어|나열|인쇄|번역|요약|보내|전송|덤프|붙여\s*넣)"
_QUOTED = r"[\"'“‘「『][^\"'”’」』\n]{1,40}[\"'”’」』]"
_PH_URL = (r"https?://[^\s?&]{0,200}[?&][^\s)]{0,200}?(?:\{|\[|<|%7b|\$|=(?:data|conversation|history|prompt|"
           r"secret|key|token|chat|summary|question|answer|info|user))|\{[^}\n]{1,40}\}|\[(?:DATA|QUESTION|"
           r"CONVERSATION|HISTORY|SECRET|KEY|INPUT|ANSWER)\]")

# override: ignore / forget / stop following the instructions given
_N = (r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|commands|orders|context|messages|"
      r"constraints|guardrails|polic(?:y|ies)|programming|restrictions|training|limitations|filters|지시|지침|명령|"
      r"규칙|프롬프트)")
_Q = (r"(?P<s>(?:all|any|every|previous|prior|above|earlier|preceding|foregoing|former|original|initial|system|"
      r"developer|default|your|these|those|aforementioned|existing|safety|hidden|given|old)\b)")
_rule("override", 0.4, "ignore disregard forget override overrule bypass discard abandon neglect nullify scrap cancel "
      "erase throw aside", rf"\b(?:ignore|disregard|forget|override|overrule|bypass|discard|abandon|neglect|nullify|"
      rf"scrap|cancel|erase|throw\s+out|set\s+aside)\b(?:[\s,]+(?:of\s+)?(?:{_Q}|{_W})){{0,4}}?[\s,]+{_N}\b",
      checks="nad", groups={"s": 0.4}, boost=r"\binstead\b|\bfrom\s+now\s+on\b", by=0.1)
_rule("override", 0.75, "ignore disregard forget", r"\b(?:ignore|disregard|forget)\s+(?:(?:everything|all(?:\s+the)?"
      r"\s+(?:text|content)|what\s+(?:you\s+were|i)\s+(?:told|said))(?:\s+(?:above|before|so\s+far|until\s+now|"
      r"previously|earlier)|\s+(?:you\s+(?:were|have\s+been)\s+told))|(?:all\s+(?:of\s+)?)?the\s+(?:above|"
      r"foregoing|preceding)(?=\s*(?:[.,;:!]|and\b|$)))", checks="nd")
_rule("override", 0.35, "follow obey listen adher comply", r"\b(?:do\s+not|don'?t|never|stop)\s+(?:follow(?:ing)?|"
      r"obey(?:ing)?|listen(?:ing)?\s+to|adher(?:e|ing)\s+to|comply(?:ing)?\s+with)\s+(?:any\s+(?:of\s+)?|all\s+"
      r"(?:of\s+)?)?(?:the\s+|these\s+)?(?:(?P<s>previous|prior|above|earlier|original|initial|system|developer|old|"
      rf"your)\s+){{0,2}}{_N}\b", checks="ad", groups={"s": 0.4})
_rule("override", 0.75, "void null cancel revoked obsolete invalid longer overridden superseded lifted disabled "
      "suspended fake irrelevant", r"\b(?:the|your|all|any)\s+(?:(?:previous|prior|above|earlier|original|initial|"
      rf"system|old|existing)\s+)+{_N}\s+(?:are|is|were|was|have\s+been|has\s+been)\s+(?:now\s+)?(?:void|null|"
      r"cancel+ed|revoked|obsolete|invalid|no\s+longer\s+(?:valid|apply|in\s+effect)|overridden|superseded|lifted|"
      r"disabled|suspended|fake|irrelevant)", checks="d")
_KQ = (r"(?:이전|이전의|앞|앞의|앞선|앞서|앞에서|위|위의|위에서|상기|기존|기존의|원래|원래의|지금까지|지금까지의|처음|"
       r"초기|기본|시스템|너의|네|니|너가|네가|니가|당신의|모든|받은|너한테\s*주어진|주어진)")
_rule("override", 0.2, "무시 잊 버리 버려 취소 폐기 무효 삭제 초기화 리셋 어기 신경 건너뛰 없던 따르지 "
      "ignore disregard forget",
      rf"(?:(?P<q>{_KQ})\s*)?(?:{_KQ}\s*)?(?:(?P<s>지시|지시사항|지시\s*사항|지시문|지침|명령|명령어|규칙|룰|프롬프트|"
      r"instructions?|prompts?|rules)|(?P<c>대화|내용|맥락|컨텍스트)|설정|안내|가이드라인|제약|제한)(?:들)?(?:은|는|을|를|도|"
      r"이|가|과|와|은\s*모두|에\s*대한)?[^.!?\n]{0,16}?(?:무시|잊|버리|버려|취소|폐기|무효|삭제|초기화|리셋|어기|"
      r"신경\s*쓰지\s*(?:마|말)|건너뛰|없던\s*(?:것|일)|따르지\s*(?:마|말)|ignore|disregard|forget)"
      r"(?P<o>(?:하세요|하십시오|하라|해라|해|해줘|어|어라|어버려|버려|으세요|으십시오)(?![가-힣]))?", checks="nmad",
      groups={"q": 0.25, "s": 0.25, "c": 0.1, "o": 0.1}, boost=r"대신|이제부터|지금부터|(?:다음|아래)\s*(?:지시|명령)",
      by=0.15)
_rule("override", 0.6, "잊 무시", r"(?:지금까지|위의|앞의|이전의?|앞에서|위에서)\s*(?:말한\s*|들은\s*|받은\s*)?"
      r"(?:모든\s*)?(?:것|말)(?:은|는|을|를|들은)?\s*(?:전부|모두|다)?\s*(?:잊|무시)", checks="nmd")
_rule("override", 0.7, "무효 효력 유효 적용되지 취소 폐기", r"(?:이전|기존|원래|위의|앞의|시스템)\s*(?:의\s*)?"
      r"(?:모든\s*)?(?:지시|지시사항|지침|규칙|프롬프트|명령)(?:은|는|이|가)\s*(?:이제\s*)?(?:더\s*이상\s*)?(?:무효|효력이\s*없|"
      r"유효하지\s*않|적용되지\s*않|취소|폐기)", checks="d")
_rule("override", 0.8, "忽略 无视 忽视 忘记 不要理会 無視 忘れ", r"(?:忽略|无视|忽视|忘记|不要理会)[^。！？\n]{0,12}?"
      r"(?:之前|以上|上面|上述|先前|所有|全部|系统)[^。！？\n]{0,8}?(?:指令|指示|说明|提示|规则|命令)|(?:以前|前|上記|上|"
      r"これまで|すべて|全て|システム)の?[^。！？\n]{0,6}?(?:指示|命令|指令|ルール|プロンプト)[^。！？\n]{0,6}?(?:無視|忘れ)")
_rule("override", 0.75, "ignor olvida oublie vergiss", r"\b(?:ignora|ignorez|ignoriere|olvida|oublie[zs]?|vergiss)\b"
      r"[^.!?\n]{0,30}?\b(?:instrucciones|instructions|anweisungen|indicaciones|consignes|befehle)\b")

_rule("override", 0.55, "above outdated obsolete wrong fake invalid void 위 앞 이전", r"\bthe\s+(?:text|instructions?|"
      r"information|content|rules)\s+above\s+(?:is|are)\s+(?:now\s+)?(?:outdated|obsolete|wrong|fake|invalid|void)\b|"
      r"(?:위|위의|앞의|이전)\s*(?:내용|지시|정보|규칙)(?:은|는)\s*(?:모두\s*)?(?:오래된|무효|틀린|잘못된|가짜)",
      checks="d")
_rule("override", 0.75, "obey follow 따르", r"\b(?:obey|follow)\s+only\s+(?:the\s+)?(?:instructions|orders|commands|"
      r"rules)\s+(?:in|of|from)\s+(?:this|the\s+following)\b|(?:이|본)\s*(?:문서|글|페이지)의?\s*(?:지시|지침|명령|"
      r"규칙)(?:만|에만)\s*따르")

# role_play: a new identity or an unrestricted mode
_rule("role_play", 0.35, "you", r"\byou\s+are\s+(?:now|no\s+longer|henceforth|from\s+now\s+on|hereby)\b",
      checks="a", boost=_PERSONA, by=0.3)
_rule("role_play", 0.45, "act behave respond answer speak reply pose", r"(?:^|[.!?:;\n][ \t]{0,3}|\b(?:please|now|"
      r"and|then|just|you\s+(?:will|must|should|shall|are\s+to))\s+)(?:act|behave|respond|answer|speak|reply|pose)\s+"
      r"(?:as|like)\s+(?:if\s+you\s+(?:were|are)\s+)?", checks="a", boost=_PERSONA + "|" + _SECRET, by=0.25)
_rule("role_play", 0.45, "pretend role", r"\bpretend\s+(?:to\s+be|you\s+are|you're|that\s+you|you\s+have)\b|"
      r"\brole-?\s?play\s+(?:as|a|an|the)\b", checks="an", boost=_PERSONA, by=0.25)
_rule("role_play", 0.4, "now", r"\bfrom\s+now\s+on\b[\s,]*(?:you|your|respond|answer|reply|always|only|act|ignore|"
      r"never|speak|talk|behave|do\s+not|don'?t)\b", checks="a",
      boost=r"\b(?:respond|answer|reply|speak|talk|behave|act|ignore|pretend|obey|refuse|say)\b|" + _PERSONA)
_rule("role_play", 0.4, "mode anything", r"\b(?:(?P<s>DAN|jailbreak|jailbroken|god|unrestricted|unfiltered|"
      r"uncensored|evil|chaos)|developer|admin|administrator|debug|sudo|root|maintenance|super\s*user)\s+mode\b|"
      r"\bdo\s+anything\s+now\b", checks="a", groups={"s": 0.35}, boost=r"\b(?:enabled|activated|engaged|unlocked)\b",
      by=0.1)
_rule("role_play", 0.35, "지금부터 이제부터 이제 앞으로 오늘부터", r"(?:지금부터|이제부터|이제|앞으로는?|오늘부터)"
      r"\s*,?\s*(?:(?P<s>너는|넌|네가|너(?=[\s,]))|당신은|당신|AI는|챗봇은|어시스턴트는|모델은)", checks="a",
      groups={"s": 0.3}, boost=_PERSONA_KO, by=0.25)
_rule("role_play", 0.4, "너는 넌 당신은", r"(?<![가-힣])(?:너는|넌|당신은)\s*(?:이제|지금부터|이제부터|앞으로)",
      checks="a", boost=_PERSONA_KO, by=0.25)
_rule("role_play", 0.5, "척", r"(?:인|이라는|라는|인\s*것처럼|처럼)\s*척(?:을)?\s*(?:해|하세요|하고|하라|해라|해줘|"
      r"하십시오|하면서)", checks="a", boost=_PERSONA_KO)
_rule("role_play", 0.35, "역할 롤 캐릭터 페르소나 인격", r"(?:역할|롤|캐릭터|페르소나|인격)(?:을|를)?\s*(?:맡아|"
      r"맡으세요|맡고|연기해|연기하세요|수행해|해\s*줘)", checks="a", boost=_PERSONA_KO)
_rule("role_play", 0.35, "모드", r"(?:(?P<s>탈옥|DAN|무제한|제한\s*없는|검열\s*없는|필터\s*없는|갓)|관리자|개발자|"
      r"디버그|운영자|루트|슈퍼\s*유저|마스터)\s*모드", checks="a", groups={"s": 0.35},
      boost=r"활성화(?:되었|됐|됨)|진입했|전환되었|켜졌|" + _PERSONA_KO)

# new_instructions: a new task announced, or a note addressed to the AI that reads the document
_rule("new_instructions", 0.45, "instruction directive prompt task rule order command", r"\b(?:(?P<s>real|actual|"
      r"true|secret|hidden|override|overriding)|new|updated|revised|additional|important|priority|urgent|special)\s+"
      r"(?:system\s+)?(?:instructions?|directives?|prompt|tasks?|rules|orders|commands)\s*[:\]—-]", span="paragraph",
      checks="a", groups={"s": 0.3}, boost=_TO_AI, by=0.15)
_rule("new_instructions", 0.75, "your 당신 너 네 니",
      r"\byour\s+(?:new|real|true|actual|only|updated)\s+(?:role|persona|identity|"
      r"name|task|goal|job|purpose|objective|mission|instructions?|directive|rules)(?:\s+(?:now|from\s+now\s+on))?\s+"
      r"(?:is|are|will\s+be|:)|(?:당신|너|네|니)의?\s*(?:유일한|새로운|새|진짜|실제)\s*(?:임무|역할|목표|할\s*일|업무)")
_rule("new_instructions", 0.65, "system", r"\bsystem\s+(?:override|update|notice|message|alert|instruction|command|"
      r"prompt|directive)\s*[:\]!—-]", span="paragraph", checks="a")
_rule("new_instructions", 0.8, "note message instruction attention important notice reminder memo",
      r"\b(?:note|message|instructions?|attention|important|notice|reminder|memo)[\s_]+(?:to|for)[\s_]+(?:the\s+|any\s+|"
      r"all\s+)?(?:(?:coding|virtual|automated)\s+)?(?:ai|a\.i\.|assistants?|llms?|language\s+models?|chatbots?|bots?|gpt|chatgpt|agents?|ai\s+"
      r"(?:assistants?|models?))\b")
_rule("new_instructions", 0.8, "if", r"\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|a\.i\.|assistant|llm|(?:large\s+)?"
      r"language\s+model|chatbot|bot|gpt|ai\s+(?:model|assistant)|automated\s+system)\b")
_rule("new_instructions", 0.85, "reading processing summari seeing parsing answering analy indexing scanning retriev",
      r"\b(?:ai|a\.i\.|assistants?|llms?|language\s+models?|chatbots?|bots?|ai\s+models?|agents?)(?:\s+\w+)?[\s,]+(?:reading|"
      r"processing|summari[sz]ing|seeing|parsing|answering|analy[sz]ing|indexing|scanning|retrieving)\s+(?:this|"
      r"these|the\s+following)\b")
_rule("new_instructions", 0.45, "지시 지침 명령 임무 작업 규칙 프롬프트", r"(?:(?P<s>진짜|실제|비밀|숨겨진|최우선)|"
      r"새로운|새|변경된|업데이트된|추가|중요한?|긴급|특별)\s*(?:시스템\s*)?(?:지시|지시사항|지시\s*사항|지침|명령|임무|작업|"
      r"규칙|프롬프트|할\s*일|과제|업무)\s*[:：\]—-]", span="paragraph", checks="a", groups={"s": 0.3}, boost=_TO_AI,
      by=0.15)
_rule("new_instructions", 0.85, "읽는 처리하는 요약하는 보는 분석하는 검색한 참고하는", r"(?:이|본)\s*(?:글|문서|내용|"
      r"텍스트|페이지|자료)(?:을|를)?\s*(?:읽는|처리하는|요약하는|보는|분석하는|검색한|참고하는)\s*(?:AI|인공지능|챗봇|"
      r"어시스턴트|언어\s*모델|모델|봇|에이전트)")
_rule("new_instructions", 0.65, "라면 경우 에게 한테", r"(?:AI|인공지능|챗봇|어시스턴트|언어\s*모델|AI\s*모델|에이전트)"
      r"(?:라면|이라면|인\s*경우)|\[\s*(?:AI|인공지능|챗봇|어시스턴트)에게\s*\]|(?:AI|인공지능|챗봇|어시스턴트|"
      r"언어\s*모델)(?:에게|한테)\s*(?:전달|지시|알림|명령)", checks="a")
_rule("new_instructions", 0.65, "시스템", r"시스템\s*(?:메시지|공지|알림|명령|지시|업데이트|오버라이드|재정의)\s*"
      r"[:：\]—-]", span="paragraph", checks="a")

_rule("new_instructions", 0.6, "now", r"\byou\s+(?:must|will|shall|should)\s+now\s+(?:only\s+)?(?:obey|follow|"
      r"answer|respond|reply|act|comply|ignore|say)\b", checks="a")

# role_header: a chat turn faked at the start of a line
_rule("role_header", 0.4, "sys developer admin 시스템 관리자 운영자", _LEAD + r"\[?(?:system|sys|developer|"
      r"admin(?:istrator)?(?=[ \t]*(?:message|notice))|시스템|관리자|운영자)\]?[ \t]*(?:prompt|message|notice|메시지|"
      r"프롬프트|공지)?[ \t]*[:：]", span="paragraph", boost=_CUE, by=0.3,
      flags=_ML)
_rule("role_header", 0.6, "[", _LEAD + r"\[(?:system|system\s+message|admin|administrator|developer|시스템|관리자|"
      r"시스템\s*메시지)\]", span="paragraph", flags=_ML)
_rule("role_header", 0.3, ": ：", _LEAD + r"(?:assistant|ai|bot|chatbot|gpt|어시스턴트|챗봇)[ \t]*[:：]", span="line",
      boost=_CUE, by=0.1, flags=_ML)
_rule("role_header", 0.25, ": ：", _LEAD + r"(?:user|human|사용자)[ \t]*[:：]", span="line", flags=_ML)
_rule("role_header", 0.3, "#", r"^[ \t]{0,4}#{1,4}[ \t]*(?:instructions?|system|system\s+prompt|response|input|"
      r"new\s+instructions?|지시|지시사항|시스템|응답)[ \t]*(?P<c>[:：])?", span="paragraph", groups={"c": 0.4},
      flags=_ML)

# template_token: chat-template tokens of common models, which only a template should produce
_rule("template_token", 0.7, "|", r"<\s*\|\s*(?:(?P<s>im_start|im_end|im_sep|endoftext|eot_id|eom_id|"
      r"start_header_id|end_header_id|begin_of_text|end_of_text|system|user|assistant)|[a-z][a-z_]{1,29})\s*\|\s*>",
      span="paragraph", groups={"s": 0.2})
_rule("template_token", 0.85, "inst sys _of_turn", r"\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>", span="paragraph")
_rule("template_token", 0.45, "</s>", r"</s>", span="paragraph")
_rule("template_token", 0.4, "<", r"</?(?:(?P<s>system|system_prompt|sys|instructions?|developer|prompt)|admin|"
      r"assistant|user|human)>", span="paragraph", groups={"s": 0.2})

# delimiter: a fake end of the context, a fake source label or prompt header, a forged chunk marker
_rule("delimiter", 0.4, "end close", r"^[ \t>*#=_\[(<~-]{0,10}(?:end\s+of|end|close|closing)\s+(?:the\s+)?"
      r"(?:(?P<s>documents|contexts?|search\s+results?|retrieved\s+(?:text|content|documents?|data|passages?)|"
      r"sources|input|excerpts?|knowledge\s+base|reference\s+(?:material|documents?)|user\s+(?:input|data|content)|"
      r"data|passages?|chunks?)|document|file|text)[ \t]*[\])>=_*#.~-]{0,10}[ \t]*$", span="line", groups={"s": 0.3},
      flags=_ML)
_rule("delimiter", 0.65, "end", r"\bEND\s+OF\s+(?:THE\s+)?(?:DOCUMENTS?|CONTEXT|SEARCH\s+RESULTS?|SOURCES|INPUT|"
      r"DATA|RETRIEVED\s+[A-Z]+|PASSAGES?|EXCERPTS?)\b", span="line", flags=0)
_rule("delimiter", 0.65, "</", r"</\s*(?:context|documents?|search_results?|sources?|retrieved\w*|data|excerpts?|"
      r"knowledge|passages?|chunks?|input|untrusted\w*)\s*>", span="line")
_rule("delimiter", 0.85, "<< ‹‹ ««", r"(?<![<‹«﹤])[<‹«﹤]{2,}+[ \t]{0,3}/?[ \t]{0,3}(?:end\s+|begin\s+|start\s+)?"
      r"(?:of\s+)?(?:untrusted\s+)?(?:document|doc|data|context)s?\b", span="line")
_rule("delimiter", 0.6, "[", r"^[ \t]{0,4}\[(?:questions?|documents?|answer|excerpts|context|standalone\s+question|"
      r"follow-up\s+question|conversation|answer\s+so\s+far|more\s+documents|system|instructions?|질문|문서|답변|답|"
      r"발췌|추가\s*문서|대화|독립\s*질문|후속\s*질문|지금까지의\s*답|지시)\][ \t]*$", span="paragraph", flags=_ML)
_rule("delimiter", 0.6, "[", r"^[ \t]{0,4}\[\d{1,3}\][ \t]+\([^()\n]{1,120}\)[ \t]*$", span="paragraph", flags=_ML)
_rule("delimiter", 0.65, "끝 종료 마침", r"^[ \t>*#=_\[(<~-]{0,10}(?:문서|컨텍스트|자료|검색\s*결과|참고\s*자료|"
      r"본문|입력|데이터|발췌)\s*(?:의\s*)?(?:끝|종료|마침)[ \t]*[\])>=_*#.~-]{0,10}[ \t]*$|\[\s*(?:문서|컨텍스트|"
      r"자료|검색\s*결과)\s*(?:끝|종료)\s*\]", span="line", flags=_ML)
_rule("delimiter", 0.6, "--- === ___ *** ### ~~~", r"^[ \t]*[=_*#~-]{3,}[ \t]*(?:system|instructions?|admin|시스템|"
      r"지시|관리자)\b", span="paragraph", flags=_ML)

# exfiltration: reveal the prompt or secrets, or send the conversation somewhere
_EV = (r"\b(?:reveal|print|show|display|output|repeat|recite|tell\s+me|give\s+me|share|leak|disclose|dump|write\s+"
       r"(?:out|down)|spell\s+out|list|expose|send\s+me|provide|paste|echo|read\s+(?:out|back)|state|type\s+out|"
       r"summari[sz]e|translate|what\s+(?:is|are|was|were))\b[^.!?\n]{0,30}?\b")
_rule("exfiltration", 0.35, "prompt instruction history message rule guideline directive configuration programming",
      _EV + r"(?:(?P<s>system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|full|entire|"
      r"complete|exact)\s+(?:system\s+)?(?:prompt|instructions?)|developer\s+(?:message|prompt|instructions?)|"
      r"pre-?prompt|meta-?prompt|your\s+(?:prompt|instructions|rules|guidelines|directives|configuration|"
      r"programming)|(?:instructions|rules|prompt)\s+you\s+(?:were|have\s+been|are)?\s*(?:given|running|following|"
      r"using|operate\s+under|work\s+under|run\s+(?:on|under|with))|(?:conversation|chat)\s+history|"
      r"previous\s+messages)|(?:the\s+)?prompt|instructions)\b", checks="nad", groups={"s": 0.45},
      boost=r"\b(?:verbatim|word\s+for\s+word|exact(?:ly)?|in\s+full|starting\s+with|everything|entire|complete|"
      r"first\s+\d+\s+words?)\b")
_rule("exfiltration", 0.35, "key password passwd credential token environment env ssh connection",
      _EV + r"(?:api[\s_-]?keys?|secret[\s_-]?keys?|access[\s_-]?(?:keys?|tokens?)|private[\s_-]?keys?|"
      r"passwords?|passwd|credentials|auth(?:entication)?\s+tokens?|bearer\s+tokens?|tokens|environment\s+"
      r"variables?|env(?:ironment)?\s+vars?|\.env\b|ssh\s+keys?|connection\s+strings?|\w+_API_KEY)", checks="nad",
      boost=r"\b(?:all|every|you\s+(?:have|know|use|were\s+given|can\s+(?:see|access))|stored|configured|in\s+"
      r"your\s+(?:context|memory|configuration|prompt|system)|openai|anthropic|the\s+(?:server|system)'?s?|"
      r"admin(?:istrator)?)\b", by=0.25)
_rule("exfiltration", 0.45, "above before preceding prior came given", r"\b(?:repeat|print|output|echo|write|"
      r"reproduce|return|recite)\b[^.!?\n]{0,20}?\b(?:everything|all(?:\s+(?:of\s+)?the)?\s+(?:text|words|content|"
      r"messages?|instructions)|the\s+(?:text|words|content|messages?|lines?))\s+(?:above|before\s+this|preceding|"
      r"prior\s+to\s+this|that\s+came\s+before|you\s+(?:were|have\s+been)\s+given)", checks="na",
      boost=r"\b(?:verbatim|word\s+for\s+word|exactly|starting\s+with|including|code\s?block|unchanged|from\s+the\s+"
      r"(?:beginning|start))\b", by=0.25)
_rule("exfiltration", 0.35, "http www @ url link endpoint webhook server query parameter", r"\b(?:send|forward|post|"
      r"upload|e-?mail|transmit|submit|exfiltrate|append|attach|encode|leak|include|put|add)\b[^!?\n]{0,60}?\b"
      r"(?:(?P<s>(?:the\s+)?(?:entire\s+|full\s+|whole\s+)?(?:conversation|chat\s+(?:history|log)|dialog(?:ue)?\s+"
      r"history|previous\s+messages|system\s+prompt|api\s+keys?|secrets?|credentials|session\s+(?:token|cookie)s?|"
      r"cookies))|(?P<u>users?'?s?\s+(?:data|questions?|messages?|information|details|e-?mail|name|password|address|"
      r"phone|quer(?:y|ies)|history))|(?:the\s+)?(?:question|answer|response)s?)\b[^!?\n]{0,60}?(?:https?://|www\.|"
      r"\b[\w.+-]{1,64}@[\w-]{1,63}\.[\w.]{1,63}|\b(?:url|link|endpoint|webhook|server|query\s+string|parameter)\b)",
      checks="na", groups={"s": 0.45, "u": 0.1},
      boost=_PH_URL + r"|\bbefore\s+(?:answering|responding|replying|you\s+answer)\b", by=0.3)
_rule("exfiltration", 0.25, "![", r"!\[[^\]\n]{0,100}\]\(\s*https?://[^\s)]{1,200}\)", boost=_PH_URL, by=0.5)
_rule("exfiltration", 0.7, "http", r"https?://[^\s?]{1,100}\?[^\s]{0,100}?=\s*(?:\{[^}\n]{1,40}\}|\[[A-Z_ ]{2,30}\]|"
      r"<[^>\n]{1,40}>|\$\{?\w+)")
_rule("exfiltration", 0.35, "프롬프트 지시 지침 규칙 설정 대화", r"(?:(?P<s>시스템\s*(?:프롬프트|메시지)|(?:초기|원래|"
      r"숨겨진)\s*(?:지시|프롬프트|설정)|(?:너|네|니|당신)(?:의|가)?\s*(?:받은\s*)?(?:지시|지시사항|지시문|지침|프롬프트|"
      r"규칙|설정)|받은\s*(?:지시|지시사항|지시문|지침|프롬프트)|대화\s*(?:기록|내역|이력)|전체\s*프롬프트|지시문\s*원문|"
      r"(?:따르는|따르고\s*있는|받고\s*있는)\s*(?:지시|지시문|규칙|지침))|프롬프트|지시문|지시사항)"
      rf"\s*(?:을|를|도|의\s*(?:내용|전문)을?|전문을?|내용을?)?\s*[^.!?\n]{{0,25}}?{_KO_TELL}", checks="nad",
      groups={"s": 0.45}, boost=r"그대로|전부|모두|전체|한\s*글자도|원문|처음부터|토씨")
_rule("exfiltration", 0.35, "키 key 토큰 비밀번호 패스워드 암호 변수 자격 관리자 접속", r"(?:API\s*키|api\s*key|"
      r"(?:비밀|시크릿|개인)\s*키|액세스\s*(?:키|토큰)|인증\s*(?:키|정보|토큰)|토큰|비밀번호|패스워드|암호|환경\s*변수|"
      r"자격\s*증명|관리자\s*(?:비밀번호|계정)|접속\s*정보|키\s*값)\s*(?:을|를|도|들을|값을)?"
      rf"\s*[^.!?\n]{{0,15}}?{_KO_TELL}", checks="nad", boost=r"모든|전부|모두|너가|네가|니가|당신이|"
      r"(?:가지고|알고)\s*있는|저장된|설정된|서버의|시스템의|관리자", by=0.25)
_rule("exfiltration", 0.65, "그대로 전부 모두 글자", r"(?:위|위의|앞|앞의|이전|지금까지의?|(?:위|앞)에\s*있는)\s*"
      r"(?:모든\s*)?(?:내용|텍스트|글|문장|대화|메시지|지시|지시문|단어)(?:을|를|들을)?\s*[^.!?\n]{0,12}?(?:그대로|"
      r"전부|모두|글자\s*그대로|한\s*글자도\s*빠짐없이)\s*[^.!?\n]{0,10}?(?:반복|출력|복사|적어|보여|옮겨)",
      checks="na")
_rule("exfiltration", 0.35, "http 이메일 메일 서버 주소 url 링크 웹훅 엔드포인트", r"(?:(?P<s>대화\s*(?:내용|기록|"
      r"내역)|이전\s*대화|시스템\s*프롬프트|API\s*키|비밀번호|개인\s*정보|사용자\s*(?:정보|데이터|개인정보|질문|이메일|"
      r"비밀번호))|질문|답변)(?:을|를|도)?\s*[^!?\n]{0,60}?(?:https?://\S+|이메일|메일|서버|주소|URL|링크|웹훅|"
      r"엔드포인트)\s*(?:로|으로|에)?\s*[^.!?\n]{0,10}?(?:보내|전송|업로드|전달|첨부|포함|붙여)", checks="n",
      groups={"s": 0.4}, boost=_PH_URL, by=0.3)

# output_hijack: a fixed answer, a link or a message forced into the reply
_ANSWERS = r"(?:answers?|responses?|replies|outputs?)"
_rule("output_hijack", 0.65, "with", r"\b(?:reply|respond|answer|say|output|write|return|print|type)\b[^.!?\n]{0,12}?"
      r"\bonly\b[^.!?\n]{0,12}?\bwith\b|\b(?:reply|respond|answer|output)\s+(?:only\s+)?with\s+(?:only\s+)?"
      r"(?:the\s+)?(?:single\s+)?(?:word|phrase|string|sentence|message|following|link|url|emoji|letters?)\b",
      checks="na")
_rule("output_hijack", 0.4, "only just simply always", r"\b(?:only|just|simply|always)\s+(?:reply|respond|answer|say|"
      r"output|write|print)\b", checks="na", boost=_QUOTED + r"|\bpwned\b|\bhacked\b")
_rule("output_hijack", 0.5, "exactly verbatim literally precisely exact", r"\b(?:say|reply|respond|answer|output|"
      r"print|write|type|repeat)\s+(?:exactly|verbatim|literally|precisely|the\s+exact\s+(?:words|phrase|text))\b",
      checks="na", boost=_QUOTED)
_rule("output_hijack", 0.45, "answer response repl output", rf"\b(?:your|every|each|all|any)\s+{_ANSWERS}\s+(?:must|"
      r"should|shall|will|has\s+to|have\s+to|needs?\s+to|is\s+to|are\s+to)\s+(?:only\s+|always\s+)?(?:be|contain|"
      r"include|start|begin|end|say|consist|read|mention|recommend|link|promote)\b", checks="na",
      boost=_QUOTED + r"|\blink\b|\burl\b|https?://|\bthe\s+word\b|\bpwned\b")
_rule("output_hijack", 0.7, "answer response repl output summar", r"\b(?:include|insert|add|append|put|embed|place|"
      r"mention|paste|attach)\b[^?\n]{0,50}?\b(?:link|url|hyperlink|image|markdown|message|phrase|sentence|disclaimer|"
      r"https?://\S+|advert\w*|promo\w*)[^?\n]{0,50}?\b(?:in|into|to|at\s+the\s+(?:end|start|beginning|bottom|top)\s+"
      rf"of)\s+(?:your|the|every|each|all|any)\s+(?:{_ANSWERS}|summary|summaries)\b", checks="na")
_rule("output_hijack", 0.15, "user reader human visitor customer client them", r"\b(?:tell|ask|instruct|urge|direct|"
      r"advise|encourage|remind|convince|persuade|inform|warn|redirect)\s+(?:the\s+|all\s+)?(?:(?P<s>users?|readers?|"
      r"humans?|visitors?)|customers?|clients?|them)\s+(?:to|that)\s+(?:\w+\s+){0,3}?(?:visit|click|go|open|download|"
      r"install|call|send|enter|log\s+in|sign\s+in|transfer|pay|wire|contact|e-?mail|navigate|follow|browse|reset|"
      r"verify|update|provide|share)\b", checks="na", groups={"s": 0.25}, boost=_URL, by=0.3)
_rule("output_hijack", 0.55, "regardless whatever matter", r"\bregardless\s+of\s+(?:the|what|their|any|which|whatever)"
      r"\s+(?:\w+\s+){0,2}?(?:question|user|query|input|prompt|asked|asks)\b|\b(?:whatever|no\s+matter\s+what)\s+"
      r"(?:the\s+)?(?:user|question|anyone|they|people)\s+(?:asks?|says?|types?|wants?|writes?)", checks="a")
_rule("output_hijack", 0.45, "not don never", r"\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|tell|say|disclose|"
      r"show|inform|acknowledge|admit|explain)\b[^.!?\n]{0,40}?\b(?:this|these|the\s+above)\s+(?:instructions?|"
      r"message|note|text|directive|request)", checks="a",
      boost=r"\buser\b|\byou\s+(?:were|have\s+been)\s+(?:told|instructed|asked)\b", by=0.3)
_rule("output_hijack", 0.55, "instead", r"\binstead\s+of\s+(?:answering|responding|replying|summari[sz]ing)\b",
      checks="a")
_rule("output_hijack", 0.35, "만", r"(?:(?P<s>라고만)|으로만|로만|만)\s*(?:답|대답|응답|출력|말|쓰|작성|적|회신|반응)",
      checks="nma", groups={"s": 0.35}, boost=r"오직|반드시|무조건|항상|다른\s*말|PWNED|해킹")
_rule("output_hijack", 0.6, "오직 반드시 무조건 항상 언제나 모든", r"(?:오직|반드시|무조건|항상|언제나|모든\s*(?:질문|"
      r"답변|응답)에)\s*[^.!?\n]{0,30}?(?:이?라고|만)\s*(?:답|대답|응답|출력|말)", checks="nma")
_rule("output_hijack", 0.7, "포함 추가 삽입 넣 붙이 붙여 첨부 표시 달아", r"(?:답변|대답|응답|답|출력|결과|요약)"
      r"(?:의\s*)?(?:\s*(?:끝|마지막|처음|맨\s*앞|맨\s*뒤|하단|상단))?(?:에|에는|마다|에도)\s*[^?\n]{0,50}?(?:링크|URL|url|주소|"
      r"문구|문장|메시지|광고|이미지|https?://\S+)\S{0,3}\s*[^?\n]{0,15}?(?:포함|추가|삽입|넣|붙이|붙여|첨부|표시|달아)",
      checks="nma")
_rule("output_hijack", 0.7, "링크 url 주소 사이트 문구 문장", r"(?:다음|아래|이)\s*(?:링크|URL|주소|사이트|웹사이트|"
      r"문구|문장)(?:를|을|로)?\s*[^.!?\n]{0,20}?(?:답변|답|응답|대답)(?:에|으로|에서)?\s*(?:포함|추가|제시|안내|넣|"
      r"보내|출력|사용)", checks="nma")
_rule("output_hijack", 0.15, "에게 한테 께", r"(?:(?P<s>사용자|유저|질문자|독자|이용자|방문자)|고객|손님)(?:에게|한테|"
      r"께|들에게)\s*[^!?\n]{0,60}?(?:접속|방문|클릭|다운로드|설치|입력|송금|이체|결제|보내|전화|로그인|인증)(?:하라고|"
      r"하도록|하게|해야\s*한다고|하라는)", checks="nma", groups={"s": 0.25}, boost=_URL, by=0.3)
_rule("output_hijack", 0.5, "상관 관계 관련 묻든 물어도 물어보든 질문하든 어떤", r"(?:질문|요청|물음|입력)(?:과|와|에|"
      r"의\s*내용과)?\s*(?:상관|관계|관련)\s*없이|무엇을\s*(?:묻든|물어도|물어보든|질문하든)|어떤\s*질문(?:을\s*"
      r"받더라도|이\s*(?:오더라도|와도)|에도|이든)", checks="a", boost=r"라고|만\s*답|답하|대답|응답", by=0.15)
_rule("output_hijack", 0.45, "말하지 알리지 언급하지 밝히지 공개하지", r"(?:이|위의|이러한|이번)\s*(?:지시|"
      r"지시사항|지침|메시지|요청)(?:을|를|은|는)?\s*[^.!?\n]{0,15}?(?:절대\s*)?(?:말하지|알리지|언급하지|밝히지|공개하지)\s*"
      r"(?:마|말|않)", checks="a", boost=r"사용자|유저|AI|너는|당신은", by=0.3)

_rule("output_hijack", 0.45, "other else more 다른 아무것도",
      r"\b(?:do\s+not|don'?t)\s+(?:use|say|write|add|include)\s+(?:any\s+)?"
      r"(?:other|more|additional|further)\s+(?:words?|text|sentences?)|\band\s+nothing\s+(?:else|more)\b|(?:그\s*(?:외|밖)에는|"
      r"다른\s*것은)\s*아무것도\s*(?:쓰지|말하지|출력하지|하지)\s*(?:마|말)|다른\s*(?:말|내용|단어|"
      r"문장)(?:은|는|을|를|도)?\s*(?:하지|쓰지|덧붙이지|추가하지|출력하지)\s*(?:마|말)", checks="a", boost=_QUOTED)
_rule("output_hijack", 0.45, "as", r"\b(?:summari[sz]e|describe|answer|reply|respond)\b[^.!?\n]{0,40}?\bas\s*:?\s*"
      r"[\"'“‘]", checks="na", boost=r"\bonly\b|\bnothing\s+else\b|\bother\s+words\b")
_rule("output_hijack", 0.45, "every each all any 모든", r"\b(?:for|to|in)\s+(?:every|each|all|any)\s+(?:questions?|"
      r"answers?|quer(?:y|ies)|requests?|responses?)\b[^!?\n]{0,60}?\b(?:link|url|website|site)\b|모든\s*(?:질문|답변|"
      r"응답|문의)에\s*(?:대해(?:서)?\s*)?[^!?\n]{0,50}?(?:링크|URL|주소|사이트)(?:를|을)?\s*(?:안내|제시|포함|보내|알려)",
      checks="na", boost=_URL, by=0.25)

# obfuscated: asked to decode and obey, or written backwards (base64 and spaced letters: see _encoded)
_rule("obfuscated", 0.7, "base64 base-64 b64 rot13 rot-13 hex binary morse caesar reversed backwards cipher "
      "encoded decoded hidden encrypted", r"\b(?:decode|decrypt|deobfuscate|unscramble|reverse|convert|interpret)\b"
      r"[^.!?\n]{0,40}?\b(?:base-?64|b64|rot-?13|hex(?:adecimal)?|binary|morse|caesar|reversed|backwards|cipher)\b"
      r"[^.!?\n]{0,60}?\b(?:follow|execute|obey|do\s+(?:it|what|as)|carry\s+out|run|perform|comply|act\s+on|treat\s+"
      r"(?:it|them)\s+as)\b|\b(?:follow|execute|obey|carry\s+out|perform)\b[^.!?\n]{0,30}?\b(?:base-?64|rot-?13|"
      r"hex|encoded|decoded|hidden|encrypted)\s+(?:instructions?|commands?|text|message|payload)", checks="n")
_rule("obfuscated", 0.7, "base64 베이스 b64 rot13 16진수 헥사 역순 거꾸로 암호문 인코딩", r"(?:base64|베이스\s*64|b64|"
      r"rot13|16진수|헥사|역순|거꾸로|암호문|인코딩된)[^.!?\n]{0,30}?(?:디코딩|해독|복호화|변환|읽|뒤집)[^.!?\n]{0,30}?"
      r"(?:따르|실행|수행|지키|이행|답하)", checks="n")
_rule("obfuscated", 0.7, "snoitcurtsni", r"\b(?:erongi|dragersid)\b[^\n]{0,40}?\bsnoitcurtsni\b|\bsnoitcurtsni\b"
      r"[^\n]{0,40}?\b(?:erongi|dragersid)\b")

# more phrasings: precedence claims, notes and duties addressed to the assistant, fake sessions, fake turns
_rule("override", 0.7, "supersede override precedence replace 우선 앞섭", r"\b(?:supersedes?|overrides?|takes?\s+"
      r"precedence\s+over|replaces?)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:earlier|previous|prior|above|preceding|other|"
      r"original|system)\s+(?:guidance|instructions?|rules|directions|prompts?|messages?|context)|(?:이전|기존|앞|위|원래)"
      r"의?\s*(?:모든\s*)?(?:지시|안내|지침|규칙|명령|프롬프트)(?:보다|에\s*우선하여)\s*(?:우선|앞섭|먼저)", checks="d")
_rule("new_instructions", 0.7, "instruction directive rule note notice 지침 지시 규칙 안내",
      r"\b(?:assistant|ai|model|bot|"
      r"llm|chatbot)\s+(?:instructions?|directives?|rules|note|notice)\s*(?:\([^)\n]{0,30}\))?\s*[:：]|(?:어시스턴트|AI|"
      r"챗봇|모델)\s*(?:지침|지시|규칙|안내)\s*(?:\([^)\n]{0,30}\))?\s*[:：]")
_rule("new_instructions", 0.4, "longer", r"\byou\s+(?:should|must|will|shall)\s+no\s+longer\s+(?:(?P<s>cite|obey)|"
      r"follow|answer|refer|mention|rely)\b", checks="a", groups={"s": 0.15})
_rule("new_instructions", 0.6, "behaviour behavior 동작 행동", r"\b(?:model|assistant|bot|ai)\s+behaviou?r\s+(?:update|"
      r"change|override)|(?:모델|AI|챗봇|어시스턴트)\s*(?:동작|행동)\s*(?:변경|업데이트|수정)")
_rule("new_instructions", 0.6, "must should shall required 해야 하세요 하라 것", r"\b(?:assistants?|ai|chatbots?|"
      r"llms?|language\s+models?)\s+(?:must|should|shall|are\s+required\s+to|have\s+to|need\s+to)\s+(?:\w+\s+){0,3}?(?:begin|"
      r"start|end|reply|answer|respond|say|include|mention|recommend|refuse|state|write|tell|claim|pretend|deny|"
      r"confirm|insist)\b|(?:어시스턴트|AI|챗봇)"
      r"(?:는|은|가|이)\s*[^.!?\n]{0,40}?(?:답변|응답|대답|답)[^.!?\n]{0,40}?(?:해야|하세요|하라|할\s*것|하십시오)",
      checks="n")
_rule("new_instructions", 0.4, "summar translat 요약 번역", r"\bwhen\s+(?:summari[sz]ing|translating|answering\s+"
      r"questions\s+about)\s+(?:this|the)\s+(?:page|document|text|article|site)\b|(?:이|본)\s*(?:페이지|문서|글|자료)"
      r"(?:를|을|에\s*대해)?\s*(?:요약|번역)할\s*때(?:는)?", boost=r"\b(?:say|tell|claim|state|mention|leave\s+out|"
      r"omit|ignore|write)\b|하세요|말하|라고|빼고|생략")
_rule("output_hijack", 0.45, "인용 참고 언급 표시",
      r"(?:문서|출처|근거)(?:를|을)?\s*(?:인용|참고|언급|표시)하지\s*(?:말|마)",
      checks="a")
_rule("role_play", 0.45, "행동 연기",
      r"(?:처럼|인\s*것처럼|같이)\s*(?:행동|연기|말)(?:해|하세요|해서|하고|하라)", checks="a",
      boost=_PERSONA_KO + "|" + _SECRET, by=0.25)
_rule("role_header", 0.45, "[", r"\[(?:assistant|system|ai|model|bot|어시스턴트|시스템|챗봇|user|human|사용자)\]"
      r"[ \t]*[:：]", span="line", boost=_SECRET + "|" + _PERSONA + r"|\bignore\b|무시", by=0.2)
_rule("role_header", 0.35, "role persona 역할 페르소나",
      r"^[ \t]*(?:role|persona|역할|페르소나)[ \t]*[:：]", span="line",
      boost=_PERSONA + r"|DAN|탈옥|제한\s*(?:이\s*)?없|검열\s*(?:이\s*)?없|무엇이든|악당|해커", by=0.3, flags=_ML)
_rule("delimiter", 0.45, "end", r"^[ \t>*#=_\[(<~-]{0,10}END\s+OF\s+[A-Z][A-Z ]{2,30}[ \t]*[\])>=_*#.~-]{0,10}[ \t]*$",
      span="line", flags=re.MULTILINE)
_rule("delimiter", 0.45, "session conversation chat reset 세션 대화", r"^[ \t>*#=_\[(<~-]{0,10}(?:new\s+(?:session|"
      r"conversation|chat)|session\s+reset|reset\s+(?:context|session)|새\s*(?:세션|대화))[ \t]*[\])>=_*#.~-]{0,10}"
      r"[ \t]*$", span="line", flags=_ML)
_rule("delimiter", 0.45, "끝 종료", r"^[^\n]{1,20}?(?:끝|종료)[ \t]*[\])>=_*#.~-]{0,10}[ \t]*$", span="line",
      flags=re.MULTILINE)

_ADDR = (r"(?:ai|a\.i\.|chat\s?bots?|bots?|llms?|(?:large\s+)?language\s+models?|ai\s+(?:models?|agents?|helpers?|"
         r"assistants?|systems?)|(?:coding|virtual)\s+assistants?|automated\s+(?:readers?|systems?|agents?|assistants?)|"
         r"gpt|copilot)")
_ORDER_CUE = (r"\b(?:say|tell|respond|answer|reply|append|include|delete|forward|send|ignore|write|claim|skip|omit|"
              r"remove|add|recommend|use|stop|translate|output|print|list|reveal|show|give|confirm|redirect|should|"
              r"must|need\s+to|do\s+not|don'?t|never|always)\b|세요|하라|해라|할\s*것|해야|주세요|줘|십시오|생략해|라고|"
              r"전달|삭제|보내")
_rule("new_instructions", 0.55, "ai a.i. bot llm model gpt copilot assistant automated", rf"(?:(?<![\w])(?:to|for|dear|"
      rf"attention|hey|hi|hello)[\s_]+(?:the[\s_]+|any[\s_]+|all[\s_]+)?{_ADDR}(?=[\s\"']*[:,—-]|[\s_]+(?:reading|"
      rf"processing|who|that))|(?:^|[\n>{{\"'#*-]|<!--)[ \t]*{_ADDR}[ \t\"']*:)", boost=_ORDER_CUE, by=0.25)
_rule("new_instructions", 0.6, "processed read summari translat parsed analy",
      r"\bif\s+(?:this|the)\s+(?:text|document|"
      rf"page|message|content|e-?mail|file)\s+is\s+(?:being\s+)?(?:processed|read|summari[sz]ed|translated|parsed|"
      rf"analy[sz]ed)\s+by\s+(?:an?\s+)?{_ADDR}", boost=_ORDER_CUE, by=0.25)
_ADDR_KO = (r"(?:(?<![A-Za-z])(?-i:AI)(?:\s*(?:도우미|모델|비서))?(?![A-Za-z])|인공지능|챗봇|봇|어시스턴트|언어\s*모델|"
            r"코딩\s*어시스턴트|자동\s*응답\s*시스템)")
_rule("new_instructions", 0.55, "ai 인공지능 챗봇 봇 어시스턴트 모델 도우미 시스템",
      rf"{_ADDR_KO}\s*(?:(?:에게|께|한테)"
      rf"[\s\"']*[:：]|(?:을|를)\s*위한\s*[^:：\n]{{0,15}}[:：]|\s*참고\s*[:：]|[\s\"']*[:：])|(?:읽는|보는|처리하는|요약하는|"
      rf"분석하는|번역하는)\s*{_ADDR_KO}|{_ADDR_KO}(?:이|가)\s*(?:이\s*글을\s*)?(?:처리|요약|번역|분석)하고\s*있다면",
      boost=_ORDER_CUE, by=0.25)
_rule("role_play", 0.6, "stop being 그만 restrictions rules limits filters 제약 제한 규칙 필터",
      r"\bstop\s+being\s+(?:an?\s+)?"
      r"(?:ai|assistant|chatbot|bot|helpful|language\s+model)\b|\bif\s+you\s+(?:had|were\s+under|were\s+free\s+of)\s+"
      r"no\s+(?:restrictions|rules|limits|filters|guidelines)\b|(?:어시스턴트|AI|챗봇)\s*(?:노릇|역할)?\s*(?:은|는)?\s*그만|"
      r"(?:아무\s*)?(?:제약|제한|규칙|필터)(?:이|가)?\s*(?:하나도\s*)?(?:없다면|없으면)")
_rule("role_play", 0.55, "filter safety guardrail moderation restriction 필터 안전 검열 제한",
      r"\b(?:bypass|disable|turn\s+off|"
      r"circumvent|skip|remove)\s+(?:the\s+|your\s+|all\s+)?(?:content\s+|safety\s+)?(?:filters?|safety|guardrails?|"
      r"moderation|restrictions)\b|(?:콘텐츠\s*|안전\s*)?(?:필터|안전\s*장치|검열|제한)(?:를|을)?\s*(?:우회|해제|끄|꺼)",
      checks="nd", boost=r"\bauthori[sz]e\s+you\b|\byou\s+(?:may|can|are\s+allowed)|허락|허용|해도\s*(?:좋|됩|돼)")
_rule("new_instructions", 0.4, "어시스턴트 ai 챗봇 인공지능",
      r"(?:어시스턴트|AI|챗봇|인공지능)(?:는|은|가|이)\s*[^.!?\n]{0,60}?"
      r"(?:해야|하세요|하라|할\s*것|하십시오)", boost=r"대신|무시|거짓|주장|라고만", by=0.2)
_rule("output_hijack", 0.6, "only correct right official 정답 답변",
      r"\b(?:reply|replying|respond|responding|answer|answering)\s+"
      r"with\s+[^.!?\n]{1,30}?\s+only\b|\bthe\s+(?:correct|right|only|official|real)\s+answer\s+(?:to|for)\s+(?:any|"
      r"every|all|each)\s+(?:questions?|quer(?:y|ies))|질문의?\s*(?:정답|공식\s*답변|올바른\s*답)은", checks="na")
_rule("output_hijack", 0.65, "append add include insert",
      rf"\b(?:append|add|include|insert|put)\s+{_QUOTED}\s+(?:to|in|into|"
      r"at\s+the\s+end\s+of)\s+(?:the|your|every|each)\s+(?:output|answers?|responses?|replies|reply)\b", checks="na")
_rule("new_instructions", 0.5, "emergency override 재정의",
      r"\bemergency\s+override\b|\boverride\s+(?:code|test|mode)\b|"
      r"비상\s*재정의|재정의\s*(?:코드|테스트|모드)")
