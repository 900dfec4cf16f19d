package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry (SVG user units).
const (
	svgWidthPerGroup = 150
	svgBarWidth      = 34
	svgPlotHeight    = 300
	svgTop           = 70
	svgLeft          = 70
	svgBottom        = 70
	svgRight         = 90 // room for the reference-line labels
)

var svgColors = map[string]string{Baseline: "#9e9e9e", O3: "#4e79a7", PGO: "#59a14f"}

// SVG draws the report as a grouped bar chart: per module (and the
// geometric mean) one bar per variant, the height being guest instructions
// relative to the baseline, with the baseline (1.0) and the PGO goal (0.9)
// as reference lines and every bar labelled with its value.
func (r *Report) SVG() string {
	groups := append([]ModuleResult{}, r.Modules...)
	gm := ModuleResult{Module: "geomean", Ratio: r.Geomean}
	groups = append(groups, gm)

	top := 1.1
	for _, g := range groups {
		for _, v := range r.Variants {
			top = math.Max(top, g.Ratio[v]*1.05)
		}
	}
	top = math.Ceil(top*10) / 10
	width := svgLeft + svgRight + svgWidthPerGroup*len(groups)
	height := svgTop + svgPlotHeight + svgBottom
	y := func(ratio float64) float64 { return svgTop + svgPlotHeight*(1-ratio/top) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">Guest instructions per module run, relative to -O2 (lower is better)</text>`+"\n", svgLeft)
	light := ""
	if r.Light {
		light = ", LIGHT=1"
	}
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555">qemu -icount shift=0: rdtsc counts instructions%s</text>`+"\n", svgLeft, light)

	// Y axis with gridlines every 0.1.
	for t := 0.0; t <= top+1e-9; t += 0.1 {
		yy := y(t)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", svgLeft, width-svgRight, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%.1f</text>`+"\n", svgLeft-6, yy+4, t)
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", svgLeft, svgLeft, svgTop, svgTop+svgPlotHeight)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", svgLeft, width-svgRight, svgTop+svgPlotHeight, svgTop+svgPlotHeight)

	// Bars.
	for i, g := range groups {
		x0 := svgLeft + svgWidthPerGroup*i + (svgWidthPerGroup-svgBarWidth*len(r.Variants))/2
		for j, v := range r.Variants {
			ratio := g.Ratio[v]
			x := x0 + j*svgBarWidth
			yy := y(ratio)
			title := fmt.Sprintf("%s %s: %.3f of baseline", g.Module, v, ratio)
			if n, ok := g.Instructions[v]; ok {
				title += fmt.Sprintf(" (%d instructions)", n)
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x+2, yy, svgBarWidth-4, float64(svgTop+svgPlotHeight)-yy, svgColors[v], html.EscapeString(title))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="10">%.3f</text>`+"\n", x+svgBarWidth/2, yy-4, ratio)
		}
		weight := "normal"
		if g.Module == "geomean" {
			weight = "bold"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="%s">%s</text>`+"\n",
			svgLeft+svgWidthPerGroup*i+svgWidthPerGroup/2, svgTop+svgPlotHeight+18, weight, html.EscapeString(g.Module))
	}

	// Reference lines: baseline and the PGO goal.
	for _, ref := range []struct {
		v     float64
		label string
		color string
	}{{1.0, "baseline", "#333"}, {0.9, "goal: -10%", "#d62728"}} {
		yy := y(ref.v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/>`+"\n", svgLeft, width-svgRight, yy, yy, ref.color)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="%s" font-size="11">%s</text>`+"\n", width-svgRight+6, yy+4, ref.color, ref.label)
	}

	// Legend.
	lx := svgLeft
	ly := svgTop + svgPlotHeight + 44
	for _, v := range r.Variants {
		label := map[string]string{Baseline: "baseline (-O2)", O3: "-O3", PGO: "PGO (-O2 + profile)"}[v]
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/>`+"\n", lx, ly-11, svgColors[v])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+20, ly, html.EscapeString(label))
		lx += 170
	}
	b.WriteString("</svg>\n")
	return b.String()
}
