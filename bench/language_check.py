"""How well the language check tells English examples from others (fewshot.language).

    python bench/language_check.py [--data ../shared/data] [--draws 500]

Reports the share of English words (``english_word_share``) of CLINC150's and HWU64's training texts (all, and
the lowest over ``--draws`` label sets of 6 texts, 2 from each of 3 random intents, the smallest a check sees),
of short English requests full of jargon, brand names, slang or foreign names, and of short customer requests in
10 other languages with a Latin script and 6 with another script (8 each, written for this check: refunds, lost
cards, shipping, orders, login, addresses). The threshold (``fewshot.language.ENGLISH_SHARE``) must sit between
the two sides.
"""

from __future__ import annotations

import sys

import numpy as np

import common  # bench/ is on the path as a script
from fewshot.language import ENGLISH_SHARE, english_word_share

ENGLISH_HARD: dict[str, list[str]] = {
    "English, IT jargon": ["VPN disconnects on Win11 after sleep", "Outlook OAuth token expired again",
                           "k8s pod stuck in CrashLoopBackOff", "Jira SSO login loops",
                           "need admin rights to install VSCode", "printer on 3F offline",
                           "MFA codes not arriving via SMS", "Teams mic not detected on MacBook"],
    "English, brands": ["AirPods not pairing with iPhone 12", "Galaxy S21 screen cracked", "PS5 controller drift",
                        "where is my Zalando order", "Nespresso pods refund", "Kindle won't charge",
                        "IKEA Billy shelf missing screws", "Dyson V11 battery dies fast"],
    "English, slang": ["omg luv this app sooo much", "pls fix ur app its broke af", "y u charge me twice smh",
                       "cant login rn wtf", "app keeps crashin lol", "gimme my money back", "where my package at",
                       "yo the update sucks"],
    "English, foreign names": ["Transfer 500 EUR to Jürgen Müller", "call Siobhan O'Callaghan",
                               "book a table at Nobu Malibu", "directions to Gdańsk Główny", "play Sigur Rós",
                               "text Xochitl I'm late", "weather in Tromsø", "flights to Reykjavík"],
}
REQUESTS: dict[str, list[str]] = {
    "Spanish": ["¿dónde está mi reembolso?", "quiero que me devuelvan el dinero", "perdí mi tarjeta de crédito",
                "me robaron la tarjeta", "¿cuánto cuesta el envío a México?", "cancela mi pedido por favor",
                "no puedo iniciar sesión en mi cuenta", "cambia mi dirección de facturación"],
    "German": ["wo ist meine Rückerstattung", "ich möchte mein Geld zurück", "ich habe meine Karte verloren",
               "meine Kreditkarte wurde gestohlen", "wie viel kostet der Versand nach Österreich",
               "bitte storniere meine Bestellung", "ich kann mich nicht anmelden", "ändere meine Rechnungsadresse"],
    "French": ["où est mon remboursement", "je veux être remboursé", "j'ai perdu ma carte bancaire",
               "on m'a volé ma carte", "combien coûte la livraison en Belgique",
               "annulez ma commande s'il vous plaît", "je n'arrive pas à me connecter",
               "changez mon adresse de facturation"],
    "Portuguese": ["onde está meu reembolso", "quero meu dinheiro de volta", "perdi meu cartão de crédito",
                   "roubaram meu cartão", "quanto custa o frete para Portugal", "cancele meu pedido por favor",
                   "não consigo entrar na minha conta", "mude meu endereço de cobrança"],
    "Italian": ["dov'è il mio rimborso", "voglio indietro i miei soldi", "ho perso la mia carta di credito",
                "mi hanno rubato la carta", "quanto costa la spedizione in Svizzera",
                "annulla il mio ordine per favore", "non riesco ad accedere al mio account",
                "cambia il mio indirizzo di fatturazione"],
    "Dutch": ["waar is mijn terugbetaling", "ik wil mijn geld terug", "ik ben mijn creditcard kwijt",
              "mijn kaart is gestolen", "wat kost verzending naar België", "annuleer mijn bestelling alstublieft",
              "ik kan niet inloggen op mijn account", "wijzig mijn factuuradres"],
    "Polish": ["gdzie jest mój zwrot pieniędzy", "chcę odzyskać moje pieniądze", "zgubiłem kartę kredytową",
               "ukradziono mi kartę", "ile kosztuje wysyłka do Niemiec", "proszę anulować moje zamówienie",
               "nie mogę zalogować się na konto", "zmień mój adres rozliczeniowy"],
    "Turkish": ["iadem nerede", "paramı geri istiyorum", "kredi kartımı kaybettim", "kartım çalındı",
                "Almanya'ya kargo ne kadar", "lütfen siparişimi iptal edin", "hesabıma giriş yapamıyorum",
                "fatura adresimi değiştir"],
    "Indonesian": ["di mana pengembalian dana saya", "saya ingin uang saya kembali", "kartu kredit saya hilang",
                   "kartu saya dicuri", "berapa ongkos kirim ke Malaysia", "tolong batalkan pesanan saya",
                   "saya tidak bisa masuk ke akun saya", "ubah alamat penagihan saya"],
    "Swedish": ["var är min återbetalning", "jag vill ha tillbaka mina pengar", "jag har tappat mitt kreditkort",
                "mitt kort har blivit stulet", "vad kostar frakten till Norge", "avbryt min beställning tack",
                "jag kan inte logga in på mitt konto", "ändra min fakturaadress"],
    "Chinese": ["我的退款在哪里", "我想要回我的钱", "我的信用卡丢了", "我的卡被偷了", "寄到上海的运费是多少",
                "请取消我的订单", "我无法登录我的账户", "更改我的账单地址"],
    "Japanese": ["返金はどこですか", "お金を返してほしい", "クレジットカードをなくしました", "カードを盗まれました",
                 "大阪への送料はいくらですか", "注文をキャンセルしてください", "アカウントにログインできません",
                 "請求先住所を変更してください"],
    "Russian": ["где мой возврат", "я хочу вернуть свои деньги", "я потерял кредитную карту", "у меня украли карту",
                "сколько стоит доставка в Казань", "пожалуйста отмените мой заказ", "я не могу войти в аккаунт",
                "измените мой адрес для счетов"],
    "Arabic": ["أين استرداد أموالي", "أريد استعادة أموالي", "فقدت بطاقتي الائتمانية", "سرقت بطاقتي",
               "كم تكلفة الشحن إلى دبي", "من فضلك ألغ طلبي", "لا أستطيع تسجيل الدخول إلى حسابي",
               "غيّر عنوان الفواتير الخاص بي"],
    "Hindi": ["मेरा रिफंड कहाँ है", "मुझे मेरे पैसे वापस चाहिए", "मेरा क्रेडिट कार्ड खो गया", "मेरा कार्ड चोरी हो गया",
              "दिल्ली तक शिपिंग कितने की है", "कृपया मेरा ऑर्डर रद्द करें", "मैं अपने खाते में लॉग इन नहीं कर पा रहा",
              "मेरा बिलिंग पता बदलें"],
    "Korean": ["환불은 어디에 있나요", "돈을 돌려받고 싶어요", "신용카드를 잃어버렸어요", "카드를 도난당했어요",
               "부산까지 배송비는 얼마인가요", "주문을 취소해 주세요", "계정에 로그인할 수 없어요", "청구 주소를 변경해 주세요"],
}


def english_side(data, draws: int, seed: int) -> list[dict]:
    """Per dataset: the share over all training texts and the lowest over small random label sets."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in common.DATASETS:
        train = common.read_split(data, dataset, "train")
        labels = sorted(train.label.unique())
        lows = []
        for _ in range(draws):
            chosen = rng.choice(labels, size=3, replace=False)
            texts = [t for lab in chosen
                     for t in rng.choice(train.text[train.label == lab].tolist(), size=2, replace=False)]
            share = english_word_share(texts)
            if share is not None:
                lows.append(share)
        rows.append({"texts": dataset, "all": english_word_share(train.text.tolist()), "lowest": min(lows),
                     "q01": float(np.quantile(lows, 0.01))})
    return rows


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], out="language_check.json")
    p.add_argument("--draws", type=int, default=500, help="random 6-text label sets per dataset")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    hard = [{"texts": name, "all": english_word_share(texts)} for name, texts in ENGLISH_HARD.items()]
    others = [{"texts": lang, "all": english_word_share(texts)} for lang, texts in REQUESTS.items()]
    english = english_side(args.data, args.draws, args.seed) if common.has_data(args.data, split="train") else []
    if not english:
        print(f"no CLINC150/HWU64 training data under {args.data}: the English side is skipped", file=sys.stderr)
    print(f"threshold ENGLISH_SHARE = {ENGLISH_SHARE}\n")
    print("| texts | English share | lowest over 6-text label sets | 1st percentile |\n|---|---|---|---|")
    for row in english:
        print(f"| {row['texts']} (train) | {row['all']:.3f} | {row['lowest']:.3f} | {row['q01']:.3f} |")
    for row in hard + others:
        print(f"| {row['texts']} (8 requests) | {row['all']:.3f} | | |")
    common.write_json(args.out, {"threshold": ENGLISH_SHARE, "draws": args.draws, "seed": args.seed,
                                 "english": english, "english_hard": hard, "other_languages": others})
    return 0


if __name__ == "__main__":
    sys.exit(main())
