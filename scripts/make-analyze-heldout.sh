#!/usr/bin/env bash
# Makes the analyzer's held-out clips (tests/data/analyze/README.md, "Held-out
# check") into OUT_DIR (default /tmp/xs-analyze-heldout): set A (used to find
# and fix false alarms), set B (validation of round three), set C (validation
# of the formant cue, round four). Not committed: a few MB. Run the clips
# through `xswarm analyze`, or through the same 13 cases as the corpus test
# (clean, 16 kHz round trip, 11 corruptions made with
# `xswarm analyze --corrupt KIND IN OUT`). Needs espeak-ng and sox;
# deterministic for a given espeak-ng version.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/xs-analyze-heldout}"
real="${XS_REAL_SPEECH:-$root/../shared/audio/fr_speech_intro_24k.wav}"
mkdir -p "$out/A" "$out/B" "$out/C" "$out/D" "$out/E"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say() { # set name voice speed pitch text
  espeak-ng -v "$3" -s "$4" -p "$5" -w "$tmp/$2.wav" "$6"
  sox "$tmp/$2.wav" -r 24000 -b 16 -c 1 -D "$out/$1/$2.wav"
}
cut() { # set name start length
  if [ -f "$real" ]; then sox "$real" -r 24000 -b 16 -c 1 -D "$out/$1/$2.wav" trim "$3" "$4"; fi
}
S1="Our neighbours bought a yellow boat last summer, and they sail it every weekend."
S2="Could you please send me the report before Friday? I need to check the numbers."
S3="The museum opens at nine, but the guided tours only start after lunch."
S4="Seven small children were playing chess quietly in the library."
S5="It was raining heavily when the train finally arrived at the station."
S6="She sells sea shells by the sea shore, or so the old story goes."
# ---- set A (36 clips)
say A h_en029 en-029 160 50 "$S1";          say A h_gbcwmd en-gb-x-gbcwmd 160 50 "$S2"
say A h_usm3 en-us+m3 170 45 "$S3";         say A h_enf4 en+f4 160 50 "$S4"
say A h_gbclan en-gb-x-gbclan 150 50 "$S5"; say A h_usf1 en-us+f1 165 55 "$S6"
say A h_enm7 en+m7 170 50 "$S1";            say A h_gbf2 en-gb+f2 160 60 "$S3"
say A h_usm1 en-us+m1 150 40 "$S4";         say A h_auf4 en-au+f4 170 55 "$S2"
say A n_f1 en+f1 155 50 "$S5";   say A n_f2 en+f2 175 60 "$S6";   say A n_f5 en-us+f5 150 50 "$S1"
say A n_m2 en+m2 160 45 "$S2";   say A n_m4 en-us+m4 180 50 "$S3"; say A n_m5 en+m5 140 40 "$S4"
say A n_m6 en-gb+m6 165 55 "$S5"
say A n_de de 150 50 "Der Zug kam endlich am Bahnhof an, als es stark regnete."
say A n_es es+f3 160 55 "Los niños jugaban tranquilamente al ajedrez en la biblioteca."
say A n_fr fr+m3 155 50 "Nous avons acheté un petit bateau jaune l'été dernier."
say A n_it it+f2 165 50 "Il museo apre alle nove, ma le visite guidate iniziano dopo pranzo."
say A n_nl nl 160 45 "Zeven kleine kinderen speelden rustig schaak in de bibliotheek."
say A n_klatt en-us+klatt 160 50 "$S2"; say A n_klatt2 en+klatt2 160 50 "$S6"
cut A r_55 5.5 3.5; cut A r_9 9 5; cut A r_16 16 6; cut A r_14 14 2.5; cut A r_18 18 5.5
sox "$out/A/n_m2.wav" -b 16 -D "$out/A/s_phone.wav" sinc 300-3400
sox "$out/A/h_usf1.wav" -b 16 -D "$out/A/s_reverb.wav" reverb 40
sox "$out/A/n_f1.wav" -b 16 -D "$out/A/s_lp8k.wav" rate 16000 rate 24000
sox "$out/A/h_en029.wav" -b 16 -D "$out/A/s_8k.wav" rate 8000 rate 24000
sox "$out/A/h_gbcwmd.wav" -b 16 "$out/A/s_dither.wav" vol 0.9
sox "$out/A/n_m4.wav" -b 16 -D "$out/A/s_tempo.wav" tempo 1.15
sox "$out/A/n_f2.wav" -b 16 -D "$out/A/s_slowtempo.wav" tempo 0.85
# ---- set B (17 clips)
say B v_usf2 en-us+f2 165 55 "My brother fixed the old bicycle, painted it green, and gave it to his son."
say B v_m3 en+m3 150 45 "When the lights went out, everyone in the hall stayed calm and waited."
say B v_rpf4 en-gb-x-rp+f4 160 60 "There is a small bakery at the corner that sells fresh bread every morning."
say B v_m6 en-us+m6 175 50 "Please remember to lock the door and switch off the heating before you leave."
say B v_f3 en+f3 150 50 "The doctor said that a short walk after dinner would help him sleep better."
say B v_m1 en-gb+m1 160 40 "Forty people signed the letter, asking the council to repair the bridge."
say B v_pt pt+f1 160 55 "O menino comprou um livro novo na feira da cidade."
say B v_pl pl+m2 155 50 "Wczoraj wieczorem padal deszcz, wiec zostalismy w domu."
say B v_sv sv 160 50 "Vi tog tåget till Göteborg och åt lunch vid havet."
say B v_ru ru+f5 160 55 "Вчера вечером мы долго гуляли по старому парку."
say B v_cmn cmn 150 50 "我们明天早上去公园散步，然后一起吃午饭。"
say B v_ja ja 160 50 "きのうはともだちといっしょにえいがをみにいきました。"
cut B v_r0 0 4; cut B v_r20 19.5 4; cut B v_r12 12 4.5
sox "$out/B/v_f3.wav" -b 16 "$out/B/v_f3_phone.wav" sinc 300-3400
sox "$out/B/v_m3.wav" -b 16 "$out/B/v_m3_rev.wav" reverb 30
# ---- set C (round four: made after the formant cue was built; validation only)
say C c_nyc en-us-nyc+m4 140 30 "The bakery on the corner closes early on Sundays, so we went on Saturday."
say C c_scf en-gb-scotland+f1 165 70 "The children walked along the beach, looking for shells and small crabs."
say C c_deep en-us+m7 130 20 "I will call you again tomorrow morning when I have more news about it."
say C c_high en+f3 200 90 "Yesterday the weather was lovely, so we had a picnic in the garden."
say C c_cs cs+m1 160 45 "Včera večer jsme šli do kina a potom na večeři."
say C c_fi fi+f4 155 55 "Eilen illalla kävimme kävelyllä järven rannalla."
say C c_hu hu 160 50 "Tegnap este sokáig sétáltunk a régi parkban."
say C c_ko ko+f2 160 55 "어제 저녁에 우리는 오래된 공원을 산책했습니다."
say C c_hi hi+m5 150 45 "कल शाम हम पुराने पार्क में देर तक घूमे।"
say C c_tr tr 165 50 "Dün akşam eski parkta uzun süre yürüdük."
say C c_el el+f3 160 60 "Χθες το βράδυ περπατήσαμε πολύ στο παλιό πάρκο."
say C c_vi vi 150 50 "Tối hôm qua chúng tôi đi dạo rất lâu trong công viên cũ."
say C c_yue yue 150 50 "我哋琴晚喺舊公園行咗好耐。"
say C c_id id+f1 190 80 "Kemarin malam kami berjalan-jalan lama di taman tua."
say C c_es419 es-419+m2 150 25 "Ayer por la noche caminamos mucho tiempo por el parque viejo."
say C c_frbe fr-be+f2 160 60 "Hier soir, nous nous sommes promenés longtemps dans le vieux parc."
say C c_dam da+m6 160 45 "I går aftes gik vi en lang tur i den gamle park."
cut C c_r7 7 4.5 # overlaps A r_55 and r_9: another phrase cut of the only real speaker
# sox: pitch moved without the formants (sox pitch: WSOLA + resampling, the
# spectral envelope stays): a rate detector must NOT fire on these.
sox "$out/C/c_dam.wav" -b 16 -D "$out/C/c_pitchup.wav" pitch 500
sox "$out/C/c_scf.wav" -b 16 -D "$out/C/c_pitchdn.wav" pitch -500
if [ -f "$real" ]; then
  sox "$out/A/r_9.wav" -b 16 -D "$out/C/c_rpitchup.wav" pitch 400
  # and a real rate change made by sox itself (speed = resampling), not xs_an_corrupt
  sox "$out/A/r_16.wav" -b 16 -D "$out/C/c_rspeed.wav" speed 1.4 rate 24000
  sox "$out/A/r_18.wav" -b 16 -D "$out/C/c_rslow.wav" speed 0.7 rate 24000
fi
# ---- set D (round five: tonal languages vs non-tonal ones)
say D t_cmn1 cmn+f2 160 50 "我们明天早上去公园散步，然后一起吃午饭。"
say D t_cmn2 cmn+m3 170 45 "这本书很有意思，我已经看了三遍了。"
say D t_cmn3 cmn 150 60 "火车晚点了半个小时，大家都在站台上等着。"
say D t_pinyin cmn-latn-pinyin 160 50 "wo3 men5 ming2 tian1 qu4 shang4 hai3 kan4 peng2 you3"
say D t_yue1 yue+f4 160 55 "今日天氣好好，我哋去海邊行吓啦。"
say D t_yue2 yue+m2 150 45 "佢話聽日會早啲返嚟食飯，唔使等佢。"
say D t_hak hak 160 50 "我兜今晡日去街項買菜，買到當多青菜。"
say D t_vi1 vi+f1 160 55 "Hôm nay trời rất đẹp, chúng tôi đi dạo trong công viên."
say D t_vi2 vi+m2 150 40 "Anh ấy đã làm việc ở đây được năm năm rồi."
say D t_my my 150 50 "ကျွန်တော် မနက်ဖြန် ဈေးကို သွားမယ်"
say D n2_usm2 en-us+m2 160 45 "The library will be closed on Monday because of the holiday."
say D n2_gbm4 en-gb+m4 150 40 "My brother repaired the old bicycle in the garage yesterday."
say D n2_f5 en+f5 165 60 "We should leave early tomorrow to avoid the heavy traffic."
say D n2_de de+f2 160 55 "Wir haben am Wochenende einen langen Spaziergang im Wald gemacht."
say D n2_it it+m3 160 45 "Domani mattina andiamo al mercato a comprare la frutta fresca."
say D n2_ru ru+m1 150 45 "Вчера вечером мы долго гуляли по старому парку."
say D n2_sw sw 160 50 "Watoto walikuwa wakicheza mpira uwanjani jana jioni."
say D n2_lt lt 160 50 "Vakar vakare mes ilgai vaikščiojome po seną parką."
say D n2_sk sk+f3 160 60 "Včera večer sme sa dlho prechádzali po starom parku."
say D n2_es es-419+f4 160 55 "Mañana por la mañana vamos al mercado a comprar fruta fresca."
say D n2_nb nb 160 50 "I går kveld gikk vi en lang tur i den gamle parken."
say D n2_m6 en+m6 170 35 "Please remember to water the plants while I am away on holiday."
# ---- set E (round six: made after the CV-lead rule was fixed; validation
# only). Languages, voices and sentences never used before; tonal: Thai,
# Punjabi, Shan, Setswana, southern and central Vietnamese.
say E e_th th 150 50 "เมื่อวานนี้ฉันไปตลาดกับแม่และซื้อผลไม้มาเยอะมาก"
say E e_pa pa+m2 150 45 "ਕੱਲ੍ਹ ਸ਼ਾਮ ਨੂੰ ਅਸੀਂ ਨਦੀ ਦੇ ਕੰਢੇ ਬਹੁਤ ਦੇਰ ਤੱਕ ਬੈਠੇ ਰਹੇ।"
say E e_shn shn 150 50 "မိူဝ်ႈဝႃးၼႆႉ ၵဝ်ၶဝ်ႈၵၢတ်ႇ သိုဝ်ႉမၢၵ်ႇမႆႉ"
say E e_tn tn+f3 155 55 "Maabane re ne ra ya kwa nokeng go tshameka le bana."
say E e_visouth vi-vn-x-south+f4 155 55 "Sáng mai tôi sẽ đi chợ mua rau và cá tươi cho cả nhà."
say E e_vicent vi-vn-x-central+m1 150 45 "Mùa hè năm ngoái gia đình tôi đi biển chơi một tuần."
say E e_af af+m4 160 45 "Die kinders het die hele middag in die tuin gespeel."
say E e_bg bg+f2 160 55 "Утре сутринта ще отидем на пазара за пресни плодове."
say E e_ca ca 160 50 "Aquest matí hem esmorzat a la plaça amb els nostres amics."
say E e_cy cy+m5 150 45 "Roedd y plant yn chwarae ar y traeth drwy'r prynhawn."
say E e_et et+f1 160 55 "Eile õhtul jalutasime kaua vanas pargis järve ääres."
say E e_eu eu 155 50 "Atzo arratsaldean lagunekin mendira joan ginen."
say E e_he he+m6 160 45 "אתמול בערב טיילנו הרבה זמן בפארק הישן."
say E e_ro ro+f4 165 60 "Mâine dimineață mergem la piață să cumpărăm legume proaspete."
say E e_uk uk+m3 150 40 "Минулого літа ми довго подорожували горами Карпат."
say E e_ta ta 150 50 "நேற்று மாலை நாங்கள் பழைய பூங்காவில் நீண்ட நேரம் நடந்தோம்."
say E e_ms ms+f5 160 55 "Pagi tadi kami bersarapan bersama di kedai kopi itu."
say E e_hr hr+m7 155 35 "Jučer smo cijeli dan radili u vrtu iza kuće."
say E e_andy en-us+Andy 165 50 "A gentle breeze carried the smell of fresh bread down the quiet street."
say E e_annie en-gb+Annie 160 60 "Nobody expected the little band to win the contest, but they did."
say E e_klatt3 en+klatt3 155 45 "Turn left at the second traffic light and park behind the pharmacy."
say E e_mike en-us+Mike 170 40 "Is this the bus that goes to the airport, or should we take a taxi?"
cut E e_r3 3 4 # the only real speaker: every excerpt overlaps an earlier one; new cut
if [ -f "$out/E/e_r3.wav" ]; then # the real speaker through a GSM phone codec (8 kHz)
  sox "$real" -r 8000 -c 1 -D "$tmp/r.gsm" trim 10.5 4.5
  sox "$tmp/r.gsm" -r 24000 -b 16 -D "$out/E/e_rgsm.wav"
fi
# a faint noise floor (-54 dBFS): no digital silence, so judged as a recording
sox -R -n -r 24000 -b 16 -c 1 "$tmp/hiss.wav" synth "$(soxi -D "$out/E/e_ca.wav")" whitenoise vol 0.002
sox -m -v 1 "$out/E/e_ca.wav" -v 1 "$tmp/hiss.wav" -b 16 -D "$out/E/e_cahiss.wav"
for d in A B C D E; do printf "%s %s\n" "$d" "$(ls "$out/$d" | wc -l)"; done
