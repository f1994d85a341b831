"""A news site whose articles change on command, for tests of recapture: each article has a first
state (as captured) and a second state (after `change()`) that is one of the outcomes a later check
must tell apart: the same bytes, new bytes around the same article, an edit, a removal, a failure.

Chinese and English articles share one site template (header, nav, footer, one stylesheet, one
lead image each). The server binds 127.0.0.1 (port 0) and counts every GET it is asked.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .cdnsite import png

SITE_NAME = "新闻网"
NOTICE_TITLE = f"页面不存在 - {SITE_NAME}"  # the site's 404 and "gone" pages, and the stub that replaces `stub`
ARTICLE_DIR = "/news/2024/"
MOVED_TO = f"{ARTICLE_DIR}moved-new.html"  # the new slug of `moved`
SITE_CSS = """body { margin: 0; font: 16px/1.6 sans-serif; background: #f6f4ef; color: #222; }
.masthead { background: #a00; color: #fff; padding: 8px 16px; }
.masthead a { color: #fff; font-weight: bold; text-decoration: none; }
nav { padding: 4px 16px; background: #eee; }
article { max-width: 680px; margin: 16px auto; padding: 16px; background: #fff; }
figure { margin: 8px 0; }
.ad { max-width: 680px; margin: 0 auto; padding: 8px; border: 1px dashed #999; }
footer { padding: 16px; color: #777; font-size: 13px; }
"""


@dataclass(frozen=True)
class Article:
    headline: str
    paragraphs: tuple[str, ...]
    lead: str  # path of the lead image
    lang: str  # the page's lang attribute


REMOVED_PARAGRAPH = (
    "然而，并非所有摊主都对改造结果感到满意。"
    "在市场经营了二十多年的水产摊主陈先生表示，改造后摊位租金上涨了将近一半，而摊位面积反而变小了。"
    "他说身边已有好几位老摊主因为负担不起新租金而选择离开，市场管理方对此尚未作出正式回应。"
)
SOFTENED_HEADLINE = "云溪县出现强降雨 部分道路临时封闭 居民有序转移"  # `headline` after change()
NEW_LEAD = "/images/2024/lead-v2.png"  # `lead` after change()
STUB_NOTICE = "该文章已不存在或已被删除，请返回首页浏览其他新闻。"

# the invented news (no real events, places or people), as captured: Chinese, then English
_TEXTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "noisy": ("zh-CN", "青禾市地铁三号线开始空载试运行", (
        "青禾市轨道交通集团昨日宣布，地铁三号线从本周一起开始空载试运行，为期约三个月。"
        "试运行期间列车将按照正式运营的时刻表在全线二十二座车站之间往返，但不搭载乘客。"
        "集团负责人表示，这一阶段主要检验信号系统、供电系统和车站设备在高强度运行下的稳定性。",
        "三号线全长约二十九公里，自北部的柳岸站向南延伸至会展中心站，沿途经过老城区、高新区和南湖新区。"
        "线路建成后，从北部居住区到会展中心的通勤时间预计将由目前的一个多小时缩短至四十分钟左右。"
        "沿线多个车站还将与一号线和二号线实现站内换乘。",
        "据介绍，试运行期间每天将开行列车一百八十余列次，最小发车间隔为四分钟。"
        "工作人员会记录每一次停站、开关门和故障处理的时间，并在每周的例会上汇总分析。"
        "如果发现问题，相关设备厂家需要在规定时间内完成整改，整改结果也将纳入最终的验收评估。",
        "不少沿线居民对三号线的开通充满期待。"
        "家住南湖新区的市民王女士说，她每天上班需要换乘两次公交车，遇到堵车时常常迟到。"
        "她希望地铁能够尽快开通，也希望车站周边能配套建设非机动车停放点，方便居民骑车接驳。",
        "轨道交通集团表示，试运行结束后还需通过专家评审和安全评估，具体的开通日期将另行公布。"
        "在此之前，市民请勿进入尚未开放的车站和施工区域。"
        "集团同时提醒，近期沿线部分路段仍有夜间施工，相关交通管制信息可通过官方渠道查询。",
        "据悉，三号线的车站装修突出了沿线的历史文化特色，老城区的几座车站采用了青砖和木格栅等传统元素。"
        "集团表示，所有车站均设有无障碍电梯和母婴室。"
        "部分换乘站还将开设便民服务中心，为乘客提供失物招领和应急药品等服务。",
    )),
    "headline": ("zh-CN", "暴雨突袭云溪县 多条道路被冲毁 上千居民连夜转移", (
        "受强对流天气影响，云溪县自前天夜间起出现持续强降雨，截至昨日下午，全县平均降雨量超过一百二十毫米，"
        "局部地区达到两百毫米以上。县气象台连续发布暴雨橙色预警，提醒山区群众注意防范山洪和地质灾害。",
        "强降雨导致县内多条乡村道路出现塌方和积水，通往石门镇和白沙乡的两条公路一度中断。"
        "县交通运输局已组织抢修队伍连夜作业，在主要路口设置警示标志，并引导过往车辆绕行。"
        "截至记者发稿时，其中一条公路已恢复单向通行。",
        "为确保群众安全，当地政府提前组织低洼地带和山体滑坡隐患点附近的居民转移，共转移安置一千三百余人。"
        "安置点设在附近的学校和村委会，提供饮用水、食品和被褥等生活物资，并安排医务人员驻点值守。"
        "各安置点还开设了临时学习室，方便停课的学生完成作业。",
        "在白沙乡一处安置点，七十多岁的村民李大爷告诉记者，夜里雨下得很大，村干部挨家挨户敲门通知大家撤离。"
        "他说自己带上了证件和药品，其他东西都来不及收拾，但看到全家人都平安，心里也就踏实了。"
        "他说等雨停了，就回去看看家里的鸡鸭和菜地。",
        "县防汛指挥部表示，预计未来两天仍有阵雨，部分地区雨量较大，转移群众暂时不宜返回。"
        "指挥部将继续加强巡查，对河道、水库和地质灾害隐患点实行全天候监测，一旦发现险情将第一时间发布预警。",
        "记者在石门镇看到，镇上的主要街道积水已基本退去，环卫工人正在清理路面上的淤泥和树枝。"
        "镇政府工作人员表示，受损的电力和通信线路正在抢修之中，预计今晚可以全部恢复。"
        "农田受灾情况也在进一步统计之中。",
    )),
    "paragraph": ("zh-CN", "老城区东门菜市场改造完成重新开业", (
        "经过八个月的改造，青禾市老城区东门菜市场于本周六重新开业。"
        "改造后的市场面积约四千平方米，划分为蔬菜、水果、肉类、水产和熟食五个区域，并新增了公共休息区和无障碍通道。"
        "开业当天，不少老顾客一早就赶来排队。",
        "东门菜市场始建于上世纪八十年代，曾是老城区规模最大的农贸市场。"
        "由于建筑老化、排水不畅，市场内长期存在地面湿滑、气味难闻等问题。"
        "此次改造由区政府牵头，重新铺设了地下管网，更换了屋顶和通风设备，并对所有摊位进行了统一设计。"
        "施工期间，摊主们被临时安置在附近的一处停车场内继续营业。",
        REMOVED_PARAGRAPH,
        "市场还引入了电子秤和统一的价格公示屏，每个摊位的商品价格都可以在入口处的大屏上查看。"
        "管理方表示，所有电子秤都会定期接受计量部门的检定。"
        "顾客如果对分量有疑问，可以到服务台免费复秤。",
        "附近居民普遍认为，改造后的市场更加干净明亮，买菜也更方便了。"
        "家住东门街道的退休教师张阿姨说，以前下雨天进市场要穿雨靴，现在地面干爽，通道也宽了。"
        "她笑着说，推着小车来买菜一点都不费劲。",
        "区商务部门表示，东门菜市场是全市老旧农贸市场改造计划中的第一个项目。"
        "今年下半年，另外三处老旧市场也将陆续启动改造。"
        "具体方案将在征求摊主和周边居民意见后确定。"
        "届时，相关部门将提前公布临时安置方案。",
    )),
    "stub": ("zh-CN", "禾光智能完成新一轮融资 将建西南生产基地", (
        "青禾市本土企业禾光智能科技有限公司日前宣布完成新一轮融资，融资金额约为两亿元，由多家投资机构联合参与。"
        "公司表示，这笔资金将主要用于农业无人机和智能灌溉设备的研发，以及在西南地区建设新的生产基地。",
        "禾光智能成立于二〇一六年，最初只是一家由五名大学毕业生创办的小团队，主要为周边农场提供病虫害监测服务。"
        "经过几年的发展，公司员工已超过四百人，产品覆盖全国十多个省份。"
        "去年公司的营业收入比前年增长了约六成。",
        "公司创始人在接受采访时说，农业生产对天气和土壤的变化非常敏感，农户需要的是简单、可靠、价格合适的工具。"
        "他表示，公司接下来会把更多精力放在降低设备成本上，让更多中小农户也能用得起智能设备。"
        "他还透露，公司正在与多所高校合作建设联合实验室。",
        "业内人士分析，近年来智慧农业领域受到资本持续关注，但也面临研发周期长、回报较慢等挑战。"
        "一些企业在快速扩张后出现资金紧张的情况。"
        "如何在扩大规模的同时保持稳健经营，将是禾光智能需要面对的考验。",
        "据悉，禾光智能的新生产基地计划于明年年底前投入使用，届时预计可新增就业岗位三百余个。"
        "当地有关部门表示，将在用地、人才引进等方面为企业提供支持。"
        "公司也表示，新基地将优先招聘本地的大学毕业生和返乡青年。",
        "禾光智能的一位早期员工回忆说，公司刚成立时办公室只有一间不到三十平方米的小屋。"
        "那时大家经常在田间地头一待就是一整天。"
        "她说，如今公司虽然规模大了，但每年春耕时节，研发人员仍然要到农户家中住上一段时间，了解他们的真实需求。",
    )),
    "gone404": ("zh-CN", "望海区近五百名志愿者清理金沙湾海滩", (
        "本周日上午，望海区近五百名志愿者来到金沙湾海滩，参加一年一度的净滩活动。"
        "志愿者中既有附近学校的师生，也有社区居民和企业员工。"
        "大家分成二十多个小组，沿着约三公里长的海岸线捡拾垃圾。"
        "活动从上午八点开始，一直持续到中午。",
        "活动组织者介绍，当天共清理出各类垃圾约一点二吨，其中塑料瓶、泡沫块和废弃渔网占了大部分。"
        "志愿者还把收集到的垃圾按类别进行分拣，可回收的部分将交由专业机构处理。"
        "其余部分由环卫部门统一清运。"
        "组织者说，废弃渔网最难清理，往往需要几个人合力才能从沙子里拖出来。",
        "参加活动的中学生小林说，这是他第一次参加净滩活动，没想到一片看起来很干净的沙滩下面竟然埋着这么多垃圾。"
        "他说以后去海边玩的时候，一定会把自己的垃圾带走，也会提醒身边的朋友这样做。"
        "他还拍了很多照片，准备在学校的班会上和同学们分享。",
        "望海区环保部门表示，近年来区里在海滩沿线增设了分类垃圾桶和宣传牌，并安排专人每天巡查保洁。"
        "但节假日游客较多时，垃圾数量仍会明显增加。"
        "部门希望通过这样的公益活动，让更多人关注海洋环境保护。",
        "据了解，净滩活动已连续举办七年，参与人数逐年增加。"
        "主办方计划明年把活动扩展到周边的另外两处海滩，并邀请海洋研究人员现场讲解海洋垃圾对海洋生物的影响。",
        "活动结束后，志愿者们还在海滩入口处设置了一面留言墙，写下了保护海洋的心愿。"
        "一位带着孩子参加活动的家长说，让孩子亲手捡一次垃圾，比讲多少道理都管用。"
        "她打算明年再带孩子来，也会邀请邻居们一起参加。",
    )),
    "front": ("zh-CN", "第十届云溪茶文化节在茶博园开幕", (
        "第十届云溪茶文化节昨日在云溪县茶博园开幕，来自周边省市的两百多家茶企和数万名游客参加了开幕式。"
        "本届茶文化节为期五天，设有茶叶展销、制茶技艺比赛、茶园采摘体验和茶艺表演等多项活动。",
        "云溪县地处山区，气候温和湿润，种茶历史已有数百年。"
        "全县现有茶园面积约十二万亩，茶叶已成为当地农民增收的重要来源。"
        "县农业部门介绍，去年全县茶叶产值突破二十亿元，带动近三万户茶农增收。",
        "在制茶技艺比赛现场，二十多名制茶师傅同台竞技，从杀青、揉捻到烘干，每一道工序都吸引了大批观众驻足观看。"
        "今年五十八岁的周师傅已经连续参加了五届比赛。"
        "他说，手工制茶讲究火候，差一点味道就不一样了。"
        "比赛结果将在闭幕式上公布，获奖作品还将在茶博园展出。",
        "茶文化节期间，茶博园还开设了亲子研学区，孩子们可以在茶艺老师的指导下学习冲泡和品鉴。"
        "不少家长表示，这样的活动既能让孩子接触传统文化，又能亲近自然，比待在家里看电视有意义得多。"
        "研学区每天分上午和下午两场，每场限额五十人。",
        "主办方表示，茶文化节期间县城到茶博园的公交线路将加密班次，并在周边设置临时停车场。"
        "游客可通过县文旅部门的官方平台预约参观，部分体验活动需要提前报名。"
        "主办方提醒游客，山区早晚温差较大，出行请注意添衣保暖。",
        "据了解，云溪县近年来大力推动茶旅融合发展，先后建成了十余个茶园观光点和多条徒步线路。"
        "县文旅部门负责人表示，希望借助茶文化节进一步打响云溪茶叶的品牌，吸引更多游客走进山区。"
        "民宿、餐饮等相关产业也有望因此受益。",
    )),
    "moved": ("zh-CN", "青禾大学图书馆下月起试行全天开放", (
        "从下个月起，青禾大学主校区图书馆将试行二十四小时开放，这是该校图书馆建馆以来首次实行全天开放。"
        "学校表示，试行期为一个学期，期间将根据学生的使用情况和反馈意见决定是否长期实施。",
        "根据试行方案，图书馆一楼和二楼的自习区在夜间继续开放，读者需要刷校园卡进入。"
        "夜间时段不提供借还书服务，但自助借还机可以正常使用。"
        "学校还将在夜间增派安保人员，并在馆内开通紧急呼叫按钮。"
        "夜间入馆的读者还需遵守馆内的安静和卫生规定。",
        "图书馆负责人介绍，近年来每到考试周，馆内座位都十分紧张，不少学生一大早就在门口排队。"
        "去年学校曾在考试周临时延长开放时间，受到学生普遍欢迎。"
        "这也是此次决定试行全天开放的重要原因。"
        "据统计，去年考试周的日均入馆人数超过了六千人次。",
        "对于这项新举措，学生们看法不一。"
        "有学生认为全天开放可以让大家更灵活地安排学习时间，也有学生担心这会助长熬夜的习惯。"
        "学校心理健康中心提醒同学们合理安排作息，不要长时间通宵学习。"
        "中心还将在考试周期间开设心理咨询服务。",
        "学校表示，试行期间将通过问卷调查和座谈会等方式广泛听取师生意见。"
        "学校还将统计各时段的入馆人数，为后续调整开放时间提供依据。"
        "如果试行效果良好，全天开放措施有望推广到学校的另外两个校区。",
        "记者在图书馆看到，工作人员正在为夜间开放做准备，自习区新增了数十个带台灯和插座的座位。"
        "一位正在复习考研的学生说，宿舍晚上熄灯后很难找到安静的地方学习。"
        "她说图书馆全天开放对她来说帮助很大，她打算每周都来上几个晚上。",
    )),
    "unchanged": ("en", "Port Calden adds an evening ferry to Skerry Island", (
        "The Port Calden harbour authority will add an evening ferry to Skerry Island from the first of next month, "
        "ending a decade in which the last boat left the mainland at half past five. The new sailing will depart "
        "at 8.15 pm on weekdays and at 9 pm on Saturdays.",
        "Islanders have campaigned for a later crossing for years. Many of the island's 1,400 residents work or "
        "study in town, and several said they had missed evening classes, hospital visits and family events "
        "because they had to rush back to the pier.",
        '"It sounds like a small thing, but it changes how we live," said Morag Ellery, who runs the island\'s only '
        "grocery shop. She said younger families had moved away partly because of the early last boat, and she "
        "hoped the change would encourage some of them to return.",
        "The authority said the extra sailing would run as a one-year trial costing about 210,000 pounds, shared "
        "between the harbour budget and the county council. Passenger numbers will be reviewed every three months.",
        "Tickets for the evening ferry will cost the same as daytime crossings, and season ticket holders will not "
        "need to buy a new pass.",
    )),
    "lead": ("en", "Elmsford library reopens after a two-year renovation", (
        "Elmsford's central library reopened on Saturday after a two-year renovation that replaced the leaking "
        "roof, restored the original reading room and added a children's wing on the ground floor. Several "
        "hundred people queued in light rain before the doors opened.",
        "The building, which dates from 1908, had been closed since engineers found water damage in the roof "
        "timbers. The repairs cost 4.6 million pounds, most of it from a heritage grant, with the rest raised by "
        "the Friends of Elmsford Library through book sales, quiz nights and a sponsored walk.",
        "Inside, the tall windows of the reading room have been repaired and the oak shelving restored by local "
        "joiners. The children's wing has low shelves, a small stage for story time and a corner of soft seating "
        "that staff said was full within minutes of opening.",
        "Head librarian Priya Okafor said the library would stay open until 8 pm on Thursdays and offer free "
        'computer classes for older residents. "We wanted the building to belong to everyone again," she said.',
        "The local history collection, kept in storage during the works, will return to the shelves over the "
        "coming weeks.",
    )),
    "gone410": ("en", "Council delays its vote on the Mill Road cycle lanes", (
        "Elmsford county council has postponed a vote on protected cycle lanes along Mill Road after more than "
        "600 residents answered a public consultation in its final week. Councillors had been expected to approve "
        "the plan on Tuesday evening.",
        "The proposal would remove 48 parking spaces to make room for two kerb-separated lanes between the railway "
        "station and the secondary school. Supporters say hundreds of pupils use the route each day and that the "
        "painted lanes offer little protection from traffic.",
        "Shop owners on the road fear that losing parking would hurt trade. Dennis Marlow, who has run a hardware "
        "shop there for 30 years, said many of his customers drove in from the villages and could not easily "
        "carry heavy items from a distant car park.",
        "The transport committee said officers needed more time to read the responses and to study whether some "
        "parking could be kept on side streets. A revised plan is expected within two months.",
        "The Elmsford Cycling Group said it was disappointed by the delay but would keep pressing for the scheme.",
    )),
    "section": ("en", "Harbour Street bakery wins the regional bread prize", (
        "A small family bakery on Port Calden's Harbour Street has won first prize in the regional bread awards "
        "for its sourdough rye, beating more than 120 entries from bakeries along the coast. The judges praised "
        "the loaf's deep crust and its gently sour flavour.",
        "The Lindqvist bakery was opened in 1987 by Astrid Lindqvist, who brought her grandmother's recipes from "
        "the north. It is now run by her son Erik and his wife Hannah, who start work at three every morning and "
        "bake about 400 loaves a day in a single stone oven.",
        'Erik Lindqvist said the winning rye took two days to make. "There is no secret, really, just patience and '
        'good flour," he said, adding that the family buys its grain from a mill twenty miles inland.',
        "There was a queue out of the door on Monday morning. Hannah Lindqvist said they would bake extra batches "
        "this week but asked customers to be patient if the rye sold out before lunchtime.",
        "The family plans to spend the small cash prize on repairing the shop's front window.",
    )),
    "flaky": ("en", "Early frost threatens the apple harvest in the Elmsford valley", (
        "Fruit growers in the Elmsford valley are racing to pick their apples after forecasters warned of an "
        "unusually early frost later this week. Temperatures are expected to fall below minus two degrees on "
        "Thursday night, two weeks earlier than the valley's usual first frost.",
        "Most of the valley's orchards grow late varieties that are normally harvested through October. Growers "
        "say fruit left on the trees in a hard frost can bruise or split, leaving it fit only for juice.",
        'At Hollins Farm, Tom Hollins said relatives and neighbours had been called in to help. "We have about '
        'a third of the crop still on the trees," he said. "If we get most of it in by Wednesday, we will be '
        'all right."',
        "Some growers plan to run large fans through the night to pull warmer air down into the orchards, a "
        "method that has helped in previous years. Others will cover younger trees with fleece.",
        "The valley's cider makers have said they will buy any frost-damaged fruit, though at a much lower price.",
    )),
}
NAMES: tuple[str, ...] = ("unchanged", "noisy", "headline", "paragraph", "lead", "gone404", "gone410", "front",
                          "section", "stub", "flaky", "moved")
ARTICLES: dict[str, Article] = {
    name: Article(headline, paragraphs, f"/images/2024/{name}.png", lang)
    for name in NAMES for lang, headline, paragraphs in [_TEXTS[name]]
}


def _lead_image(n: int) -> bytes:
    # a distinct first colour component per image: every image path has bytes of its own
    return png(320, 180, (30 + 15 * n, 170 - 7 * n, 90 + 9 * n), (20 + 15 * n, 120 - 5 * n, 60 + 7 * n))


IMAGES: dict[str, bytes] = {
    path: _lead_image(n) for n, path in enumerate([*(a.lead for a in ARTICLES.values()), NEW_LEAD])
}


def _page(title: str, lang: str, content: str, head: str = "", header: str = "", after: str = "",
          comment: str = "") -> str:
    """The site template every HTML page shares."""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
{head}<link rel="stylesheet" href="/static/site.css">
</head>
<body>
{comment}<header class="masthead"><a href="/">{SITE_NAME}</a>{header}</header>
<nav><a href="/">首页</a> <a href="/news/">新闻</a></nav>
<main>
{content}
{after}</main>
<footer>© 2024 {SITE_NAME} 版权所有</footer>
</body>
</html>
"""


def article_page(base: str, article: Article, header: str = "", after: str = "", comment: str = "") -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in article.paragraphs)
    alt = "新闻图片" if article.lang.startswith("zh") else "News photo"  # not the headline: an edit leaves it be
    content = (f'<article>\n<h1>{html.escape(article.headline)}</h1>\n<figure><img src="{article.lead}" '
               f'width="320" height="180" alt="{alt}"></figure>\n{paragraphs}</article>')
    head = f'<meta property="og:image" content="{base}{article.lead}">\n'
    return _page(f"{article.headline} - {SITE_NAME}", article.lang, content, head, header, after, comment)


def notice_page(message: str) -> str:
    """The site's page for what it no longer has: its 404 and 410 pages, and the stub left in an article's place."""
    return _page(NOTICE_TITLE, "zh-CN", f'<article class="notice">\n<p>{html.escape(message)}</p>\n</article>')


def _listing(title: str, heading: str) -> str:
    links = "".join(f'<li><a href="{ARTICLE_DIR}{name}.html">{html.escape(ARTICLES[name].headline)}</a></li>\n'
                    for name in NAMES)
    return _page(title, "zh-CN", f'<section class="list">\n<h1>{heading}</h1>\n<ul>\n{links}</ul>\n</section>')


FRONT_PAGE = _listing(SITE_NAME, "今日要闻")
SECTION_PAGE = _listing(f"新闻 - {SITE_NAME}", "新闻")
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class _Answer:
    status: int
    kind: str
    body: bytes
    location: str = ""


def _redirect(status: int, location: str) -> _Answer:
    body = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{status}</title></head><body>'
            f'<a href="{location}">{location}</a></body></html>')
    return _Answer(status, HTML, body.encode(), location)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up on a stall are part of the tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.kind)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.location:
            self.send_header("Location", answer.location)
        self.end_headers()
        self.wfile.write(answer.body)


class ChangingSite:
    """The site at `url`; `change()` moves every article to its second state, `revert()` back."""

    NAMES: tuple[str, ...] = NAMES

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()  # path -> GETs
        self.stall: float = 30.0  # seconds `flaky` stalls on its first load after change()
        self._lock = threading.Lock()
        self._changed = False
        self._stall_armed = False
        self._stopping = threading.Event()  # ends a stall when the site stops
        site = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                with site._lock:
                    site.hits[path] += 1
                    load = site.hits[path]
                    changed = site._changed
                    stall = path == f"{ARTICLE_DIR}flaky.html" and site._stall_armed
                    if stall:
                        site._stall_armed = False
                if stall:
                    site._stopping.wait(site.stall)
                self.send(site._answer(path, load, changed))

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url: str = f"http://127.0.0.1:{self._server.server_address[1]}"
        # a short poll: stop() returns in 50 ms rather than 500
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def article(self, name: str) -> str:
        return f"{self.url}{ARTICLE_DIR}{name}.html"

    def change(self) -> None:
        with self._lock:
            if not self._changed:  # a second change() is no new change: the stall is not armed again
                self._changed = True
                self._stall_armed = True

    def revert(self) -> None:
        with self._lock:
            self._changed = False
            self._stall_armed = False

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _answer(self, path: str, load: int, changed: bool) -> _Answer:
        if path == "/":
            return _Answer(200, HTML, FRONT_PAGE.encode())
        if path == "/news/":
            return _Answer(200, HTML, SECTION_PAGE.encode())
        if path == "/static/site.css":
            return _Answer(200, "text/css; charset=utf-8", SITE_CSS.encode())
        if path in IMAGES:
            return _Answer(200, "image/png", IMAGES[path])
        if path == MOVED_TO:
            return _Answer(200, HTML, article_page(self.url, ARTICLES["moved"]).encode())
        name = path.removeprefix(ARTICLE_DIR).removesuffix(".html")
        if not (path.startswith(ARTICLE_DIR) and path.endswith(".html") and name in ARTICLES):
            return _Answer(404, HTML, notice_page("404 Not Found：您访问的页面不存在。").encode())
        article = ARTICLES[name]
        if name == "noisy":  # new bytes on every load, all of them outside <article>
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            page = article_page(self.url, article, header=f' <time datetime="{now}">{now}</time>',
                                after=f'<aside class="ad">Ad number {load}</aside>\n',
                                comment=f"<!-- render {secrets.token_hex(8)} -->\n")
            return _Answer(200, HTML, page.encode())
        if not changed or name in ("unchanged", "flaky"):
            return _Answer(200, HTML, article_page(self.url, article).encode())
        if name == "headline":
            article = replace(article, headline=SOFTENED_HEADLINE)
        elif name == "paragraph":
            article = replace(article, paragraphs=tuple(p for p in article.paragraphs if p != REMOVED_PARAGRAPH))
        elif name == "lead":
            article = replace(article, lead=NEW_LEAD)
        elif name == "gone404":
            return _Answer(404, HTML, notice_page("404 Not Found：您访问的页面不存在。").encode())
        elif name == "gone410":
            return _Answer(410, HTML, notice_page("410 Gone：该文章已被永久删除。").encode())
        elif name == "front":
            return _redirect(301, "/")
        elif name == "section":
            return _redirect(302, "/news/")
        elif name == "stub":
            return _Answer(200, HTML, notice_page(STUB_NOTICE).encode())
        elif name == "moved":
            return _redirect(301, MOVED_TO)
        return _Answer(200, HTML, article_page(self.url, article).encode())
